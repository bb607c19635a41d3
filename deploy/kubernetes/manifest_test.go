// Package kubernetes holds riskflow's Kubernetes manifests; its test checks what a cluster would
// otherwise find out late: probes on every role, a non-root numeric user, pinned images, secrets
// from a Secret, a disruption budget and an autoscaler for the scorers.
package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Replicas       *int `yaml:"replicas"`
		MaxReplicas    int  `yaml:"maxReplicas"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Metrics []struct {
			External *struct {
				Metric struct {
					Name string `yaml:"name"`
				} `yaml:"metric"`
				Target struct {
					Type         string `yaml:"type"`
					AverageValue string `yaml:"averageValue"`
				} `yaml:"target"`
			} `yaml:"external"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []struct {
		Name      string         `yaml:"name"`
		ConfigMap map[string]any `yaml:"configMap"`
		EmptyDir  *struct {
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type container struct {
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string         `yaml:"name"`
		Value     string         `yaml:"value"`
		ValueFrom map[string]any `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	StartupProbe    probe  `yaml:"startupProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a name or a number
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

// riskflowConfig is what the test reads of the ConfigMap's riskflow.yaml.
type riskflowConfig struct {
	ClickHouse struct {
		Addr string `yaml:"addr"`
	} `yaml:"clickhouse"`
	Kafka struct {
		Partitions int `yaml:"partitions"`
	} `yaml:"kafka"`
	API struct {
		Listen string `yaml:"listen"`
	} `yaml:"api"`
	Ops struct {
		Listen string `yaml:"listen"`
	} `yaml:"ops"`
	Scoring struct {
		Rules       string `yaml:"rules"`
		SnapshotDir string `yaml:"snapshot_dir"`
	} `yaml:"scoring"`
}

func load(t *testing.T) []manifest {
	t.Helper()
	b, err := os.ReadFile("riskflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []manifest
	for {
		var m manifest
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestManifests(t *testing.T) {
	ms := load(t)
	kinds := map[string]map[string]manifest{}
	for _, m := range ms {
		if kinds[m.Kind] == nil {
			kinds[m.Kind] = map[string]manifest{}
		}
		kinds[m.Kind][m.Metadata.Name] = m
	}
	cfg := kinds["ConfigMap"]["riskflow"].Data["riskflow.yaml"]
	var rc riskflowConfig
	if err := yaml.Unmarshal([]byte(cfg), &rc); err != nil {
		t.Fatalf("the ConfigMap's riskflow.yaml: %v", err)
	}
	for _, role := range []string{"scorer", "archiver", "api"} {
		d, ok := kinds["Deployment"]["riskflow-"+role]
		if !ok {
			t.Fatalf("no Deployment riskflow-%s", role)
		}
		ps := d.Spec.Template.Spec
		if !ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s: pod must run as a numeric non-root user", role)
		}
		for _, c := range append(ps.InitContainers, ps.Containers...) {
			if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
				t.Errorf("%s: image %q is not pinned", role, c.Image)
			}
			if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("%s: container must forbid privilege escalation and run read-only", role)
			}
			fromSecret := map[string]bool{}
			for _, e := range c.Env {
				if (strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "PASSWORD")) && e.Value != "" {
					t.Errorf("%s: %s is set inline; take secrets from a Secret", role, e.Name)
				}
				fromSecret[e.Name] = e.ValueFrom["secretKeyRef"] != nil
			}
			// Every process given clickhouse.addr talks to ClickHouse: archivers (and their migrate
			// step) store the history, API pods query it for the console, and every role — the
			// scorers too — records the rule packs it loads in rule_versions (one rule-pack
			// service per process). A real server wants a password, which would otherwise end up
			// in the ConfigMap in plain text; without it a scorer's records were refused forever,
			// a warning every scoring.reload_interval.
			if rc.ClickHouse.Addr != "" && !fromSecret["RISKFLOW_CLICKHOUSE_PASSWORD"] {
				t.Errorf("%s: container %v connects to ClickHouse but takes no RISKFLOW_CLICKHOUSE_PASSWORD from a Secret", role, c.Args)
			}
			// The console and the admin routes are the api role's, on with admin keys: the
			// operator gives them in the Secret, without editing the Deployment.
			if role == "api" && !fromSecret["RISKFLOW_API_ADMIN_KEYS"] {
				t.Errorf("api: container %v takes no RISKFLOW_API_ADMIN_KEYS from the Secret: the console cannot be turned on", c.Args)
			}
		}
		c := ps.Containers[0]
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: readiness and liveness probes are required", role)
		}
		// Every role answers /healthz from the moment its listener opens, also while the broker
		// is away (/readyz: "start: waiting for Kafka"; seen with the api role on an unreachable
		// broker). The startup probe on /healthz covers what comes before the listener (the
		// configuration, the IP data) without a liveness restart, and must not be the place
		// where a start during a broker outage is cut short: at least 5 minutes.
		if sp := c.StartupProbe; sp.HTTPGet.Path != "/healthz" || sp.PeriodSeconds*sp.FailureThreshold < 300 {
			t.Errorf("%s: a startup probe on /healthz must give a start during a broker outage at least 5 minutes (has %+v)", role, sp)
		}
		vols := map[string]bool{}
		for _, v := range ps.Volumes {
			vols[v.Name] = v.Name != "rules" || v.ConfigMap != nil
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		if !vols["rules"] || mounts["rules"] == "" || mounts["rules"] != path.Dir(rc.Scoring.Rules) {
			t.Errorf("%s: the rule pack (%s) must come from a ConfigMap volume mounted at its directory (mounted at %q)", role, rc.Scoring.Rules, mounts["rules"])
		}
		if role != "archiver" && (!vols["snapshots"] || mounts["snapshots"] != rc.Scoring.SnapshotDir) {
			// On a read-only root file system, snapshots anywhere else cannot be written.
			t.Errorf("%s: holds feature state and needs a snapshot volume mounted at scoring.snapshot_dir %q (mounted at %q)", role, rc.Scoring.SnapshotDir, mounts["snapshots"])
		}
		if role != "archiver" {
			snapshotVolume(t, role, ps, c)
		}
		goMemLimit(t, role, c)
		// Probes must reach the port the process listens on: the API's, or ops.listen's.
		ops, apiListen := effective(c, "RISKFLOW_OPS_LISTEN", rc.Ops.Listen), effective(c, "RISKFLOW_API_LISTEN", rc.API.Listen)
		listen := ops
		if role == "api" {
			listen = apiListen // the probes: the API's own readiness
		}
		if ops == "" {
			// An api node without it serves /metrics on the API's port, which verify services
			// reach: every rule id and its hits shown to them.
			t.Errorf("%s: no ops.listen: the process serves /metrics on no port or on the API's", role)
		}
		// Prometheus scrapes /metrics where it is: the ops port, on every role.
		if _, opsPort, _ := strings.Cut(ops, ":"); d.Spec.Template.Metadata.Annotations["prometheus.io/port"] != opsPort {
			t.Errorf("%s: scraped on port %q, but /metrics is served on ops.listen %s", role, d.Spec.Template.Metadata.Annotations["prometheus.io/port"], ops)
		}
		_, want, _ := strings.Cut(listen, ":")
		for _, pr := range []*probe{c.ReadinessProbe, c.LivenessProbe, &c.StartupProbe} {
			if pr == nil {
				continue
			}
			port := fmt.Sprint(pr.HTTPGet.Port)
			for _, cp := range c.Ports {
				if cp.Name == port {
					port = fmt.Sprint(cp.ContainerPort)
				}
			}
			if port != want {
				t.Errorf("%s: probe %s on port %v, but the process listens on %s", role, pr.HTTPGet.Path, pr.HTTPGet.Port, listen)
			}
		}
		// An API pod's readiness leaves the replica's freshness out: with the brokers away every pod
		// is stale at once, and a probe on it took them all out of the Service (every check refused,
		// callers failing open) where each could answer from its state.
		if role == "api" && (c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz?exclude=fresh") {
			t.Errorf("api: readiness probe %+v, want /readyz?exclude=fresh", c.ReadinessProbe)
		}
		// An autoscaled Deployment must leave replicas to the autoscaler: every apply would reset
		// it otherwise (and scale a loaded group down).
		for _, h := range kinds["HorizontalPodAutoscaler"] {
			if h.Spec.ScaleTargetRef.Name == d.Metadata.Name && d.Spec.Replicas != nil {
				t.Errorf("%s: the Deployment sets replicas: %d although %s scales it", role, *d.Spec.Replicas, h.Metadata.Name)
			}
		}
	}
	if _, ok := kinds["PodDisruptionBudget"]["riskflow-scorer"]; !ok {
		t.Error("no PodDisruptionBudget for the scorers")
	}
	if h, ok := kinds["HorizontalPodAutoscaler"]["riskflow-scorer"]; !ok || h.Spec.ScaleTargetRef.Name != "riskflow-scorer" {
		t.Error("no HorizontalPodAutoscaler for the scorers")
	} else {
		if h.Spec.MaxReplicas > rc.Kafka.Partitions {
			t.Errorf("the scorers' autoscaler goes up to %d replicas; more than kafka.partitions (%d) idle", h.Spec.MaxReplicas, rc.Kafka.Partitions)
		}
		// The lag is the whole group's, however many scorers share it: the HPA must divide it by
		// the replicas (AverageValue: desired = ceil(lag / target)). With a Value target it
		// computes desired = ceil(replicas × lag / target), which grows with every scale-up while
		// a backlog stands — new scorers replay their state before they score — and runs to
		// maxReplicas.
		for _, m := range h.Spec.Metrics {
			if m.External == nil || m.External.Metric.Name != "riskflow_scorer_lag" {
				continue
			}
			if m.External.Target.Type != string(autoscalingv2.AverageValueMetricType) || m.External.Target.AverageValue == "" {
				t.Errorf("the scorers' autoscaler targets the group's total lag with type %s; use AverageValue (the lag per scorer)", m.External.Target.Type)
			}
		}
	}
	// The autoscaler's query (for prometheus-adapter, in a comment): every scorer pod exports the
	// whole group's lag, so it must collapse the pods' copies per partition before summing, as
	// RiskflowConsumerLagGrowing does — a plain sum reads N pods as N times the lag.
	raw, _ := os.ReadFile("riskflow.yaml")
	if q := regexp.MustCompile(`metricsQuery: '([^']*)'`).FindSubmatch(raw); q == nil {
		t.Error("no metricsQuery for the scorers' lag metric")
	} else if !regexp.MustCompile(`^sum by \(group\) \(max by \(group, partition\) \(<<\.Series>>\{<<\.LabelMatchers>>\}\)\)$`).Match(q[1]) {
		t.Errorf("the lag metric's query %q adds up every pod's copy of the group's lag; take the max per partition, then the sum", q[1])
	}
	for _, key := range []string{"ops:", "snapshot_dir:", "rules:", "max_staleness:"} {
		if !strings.Contains(cfg, key) {
			t.Errorf("the ConfigMap's riskflow.yaml does not set %s", key)
		}
	}
}

// Every object of the manifest decodes into its Kubernetes API type with unknown fields refused —
// what kubectl's server-side validation would say at apply time: a misspelled field
// (periodSecond, readinesProbe) would otherwise be dropped without a word, and a value of the
// wrong type (a port as "8080", a quantity as 1Gib) refused only by the cluster.
func TestManifestFieldsAreKubernetesFields(t *testing.T) {
	b, err := os.ReadFile("riskflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, doc := range strictDecodeAll(t, b) {
		if len(doc.errs) > 0 {
			t.Errorf("object %d (%s %s): %v", i+1, doc.kind, doc.name, errors.Join(doc.errs...))
		}
	}
	// The check itself: a misspelled field and a wrongly typed value are found, each named.
	for _, c := range []struct{ field, want string }{
		{"readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSecond: 5}", "periodSecond"},
		{"resources: {limits: {memory: 1Gib}}", "quantities must match"},
	} {
		bad := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n" +
			"    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - name: c\n          image: i\n" +
			"          " + c.field + "\n")
		docs := strictDecodeAll(t, bad)
		if len(docs) != 1 || len(docs[0].errs) == 0 || !strings.Contains(errors.Join(docs[0].errs...).Error(), c.want) {
			t.Errorf("%s: want an error naming %q, got %+v", c.field, c.want, docs)
		}
	}
}

type decodedObject struct {
	kind, name string
	errs       []error
}

// strictDecodeAll decodes every document of a manifest into the API type of its kind.
func strictDecodeAll(t *testing.T, b []byte) []decodedObject {
	t.Helper()
	types := map[string]func() any{
		"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
		"v1/Service":                             func() any { return &corev1.Service{} },
		"v1/Secret":                              func() any { return &corev1.Secret{} },
		"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
		"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
		"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
		"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []decodedObject
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc == nil {
			continue
		}
		var o decodedObject
		o.kind, _ = doc["kind"].(string)
		if md, ok := doc["metadata"].(map[string]any); ok {
			o.name, _ = md["name"].(string)
		}
		api, _ := doc["apiVersion"].(string)
		newObj, ok := types[api+"/"+o.kind]
		if !ok {
			o.errs = append(o.errs, fmt.Errorf("apiVersion %q kind %q: not a type this test knows (add it to the table)", api, o.kind))
			out = append(out, o)
			continue
		}
		j, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		jd := json.NewDecoder(bytes.NewReader(j))
		jd.DisallowUnknownFields()
		if err := jd.Decode(newObj()); err != nil {
			o.errs = append(o.errs, err)
		}
		out = append(out, o)
	}
	return out
}

// effective is a setting's value in container c: its environment variable if the container sets
// one (also to "": the variable overrides the config file), else the config file's.
func effective(c container, env, fromFile string) string {
	for _, e := range c.Env {
		if e.Name == env && e.ValueFrom == nil {
			return e.Value
		}
	}
	return fromFile
}

// goMemLimit checks that a container with a memory limit gives the Go runtime a soft limit
// (GOMEMLIMIT) of 85–95% of it: without one the heap may grow to twice its live size before a
// collection, past the limit at a spike (a backlog of large messages, a snapshot written), and the
// kernel kills the pod where the collector would have worked harder.
func goMemLimit(t *testing.T, role string, c container) {
	t.Helper()
	mem, err := resource.ParseQuantity(c.Resources.Limits["memory"])
	if err != nil {
		t.Errorf("%s: memory limit %q: %v", role, c.Resources.Limits["memory"], err)
		return
	}
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		n, unit := e.Value, int64(1)
		for _, u := range []struct {
			s string
			m int64
		}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
			if strings.HasSuffix(n, u.s) {
				n, unit = strings.TrimSuffix(n, u.s), u.m
				break
			}
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Errorf("%s: GOMEMLIMIT %q: not a size the Go runtime reads", role, e.Value)
			return
		}
		if ratio := float64(v*unit) / float64(mem.Value()); ratio < 0.85 || ratio > 0.95 {
			t.Errorf("%s: GOMEMLIMIT %s is %.0f%% of the memory limit %s, want 85–95%%", role, e.Value, 100*ratio, &mem)
		}
		return
	}
	t.Errorf("%s: no GOMEMLIMIT beside the memory limit %s", role, &mem)
}

// snapshotVolume checks the snapshot volume of a pod holding feature state: an emptyDir (kept
// through container restarts; a pod replaced replays from Kafka — docs/SCALING.md, "Snapshots on
// Kubernetes") whose sizeLimit takes three snapshot files of at most 2/3 of the state, which the
// memory limit bounds — past it the kubelet evicts the pod — and whose disk is requested.
func snapshotVolume(t *testing.T, role string, ps podSpec, c container) {
	t.Helper()
	for _, v := range ps.Volumes {
		if v.Name != "snapshots" {
			continue
		}
		if v.EmptyDir == nil {
			t.Errorf("%s: the snapshot volume is not an emptyDir: update docs/SCALING.md (Snapshots on Kubernetes) and this test", role)
			return
		}
		size, err := resource.ParseQuantity(v.EmptyDir.SizeLimit)
		if err != nil {
			t.Errorf("%s: snapshot volume sizeLimit %q: %v", role, v.EmptyDir.SizeLimit, err)
			return
		}
		mem, err := resource.ParseQuantity(c.Resources.Limits["memory"])
		if err != nil {
			t.Errorf("%s: memory limit %q: %v", role, c.Resources.Limits["memory"], err)
			return
		}
		if size.Value() < 2*mem.Value() {
			t.Errorf("%s: snapshot volume sizeLimit %s under 2 × the memory limit %s: three snapshots of a state that fills the memory do not fit, and the kubelet evicts the pod", role, &size, &mem)
		}
		if disk, err := resource.ParseQuantity(c.Resources.Requests["ephemeral-storage"]); err != nil || disk.Cmp(size) < 0 {
			t.Errorf("%s: requests ephemeral-storage %q, want at least the snapshot volume's sizeLimit %s: the pod may land on a node without the disk", role, c.Resources.Requests["ephemeral-storage"], &size)
		}
	}
}

// Every container of the manifest runs one image: the archivers' migrate step must apply the
// schema of the build that then writes to it, and scorers, archivers and API nodes of one release
// share the score record's and the snapshot's formats. An image bumped in one place and not the
// others (the init container is easy to miss) would run two releases side by side.
func TestManifestRunsOneImage(t *testing.T) {
	images := map[string][]string{}
	for _, m := range load(t) {
		ps := m.Spec.Template.Spec
		for i, c := range append(ps.InitContainers, ps.Containers...) {
			if c.Image != "" {
				images[c.Image] = append(images[c.Image], fmt.Sprintf("%s %s container %d", m.Kind, m.Metadata.Name, i))
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("the manifest runs %d images, want one release everywhere: %v", len(images), images)
	}
}
