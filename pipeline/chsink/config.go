package chsink

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of [Config].
const (
	DefaultDatabase     = "riskflow"
	DefaultDialTimeout  = 5 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// Config says where ClickHouse is and how long to wait for it. The YAML keys are those of
// riskflow's clickhouse section; DefaultConfig has the defaults, Validate names every key that is
// wrong.
type Config struct {
	// Addr is the native-protocol address, host:port (ClickHouse's tcp_port, 9000 by
	// default). Several servers of one cluster may be given separated by commas; they are
	// tried in order.
	Addr string `yaml:"addr"`
	// Database holds riskflow's tables; "" means "riskflow". It must be a plain identifier
	// (letters, digits, underscore, not starting with a digit).
	Database string `yaml:"database"`
	// Username and Password authenticate; "" means ClickHouse's "default" user.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DialTimeout bounds opening one connection; 0 means 5 s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// WriteTimeout bounds writing a batch to one table, and any single wait for the
	// server's answer; 0 means 30 s. A shorter deadline on the caller's context wins. An
	// INSERT that runs out of it halves the records of the next ones (down to 5,000), for 10
	// minutes after the last such timeout, so a server too slow for a whole batch still gets it.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Compression of the blocks sent to the server: "lz4", "none", or "auto" ("" too): none when
	// every address is a loopback one (127.0.0.0/8, ::1, localhost), where there is no bandwidth
	// to save and LZ4 costs CPU on both ends, lz4 otherwise. The server compresses what it stores
	// either way.
	Compression string `yaml:"compression"`
}

// Compression methods of [Config.Compression].
const (
	CompressionAuto = "auto"
	CompressionLZ4  = "lz4"
	CompressionNone = "none"
)

// compressed reports whether blocks go to the server LZ4-compressed (see Config.Compression).
func (c Config) compressed() bool {
	switch c.Compression {
	case CompressionLZ4:
		return true
	case CompressionNone:
		return false
	}
	for _, a := range splitAddrs(c.Addr) {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return true
		}
		if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			return true
		}
	}
	return false
}

// DefaultConfig is the configuration with every default filled in, except Addr (no default).
func DefaultConfig() Config {
	c := Config{}.withDefaults()
	c.Username = "default"
	return c
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports what is wrong with c, each error starting with the key's name. Zero values
// that have a default are fine.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Addr) == "" {
		errs = append(errs, errors.New("addr: required (host:port of the native protocol)"))
	} else {
		for _, a := range splitAddrs(c.Addr) {
			if err := checkAddr(a); err != nil {
				errs = append(errs, fmt.Errorf("addr: %q: %w", a, err))
			}
		}
	}
	if c.Database != "" && (!identRE.MatchString(c.Database) || len(c.Database) > 128) {
		errs = append(errs, fmt.Errorf("database: %q must be letters, digits and _ (not starting with a digit, at most 128)", c.Database))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: %v must not be negative", c.DialTimeout))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("write_timeout: %v must not be negative", c.WriteTimeout))
	}
	switch c.Compression {
	case "", CompressionAuto, CompressionLZ4, CompressionNone:
	default:
		errs = append(errs, fmt.Errorf("compression: %q must be auto, lz4 or none", c.Compression))
	}
	return errors.Join(errs...)
}

func checkAddr(a string) error {
	if a == "" {
		return errors.New("empty address in the list")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("must be host:port")
	}
	if host == "" {
		return errors.New("host is missing")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", port)
	}
	return nil
}

func splitAddrs(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// withDefaults fills the zero values that have a default.
func (c Config) withDefaults() Config {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Compression == "" {
		c.Compression = CompressionAuto
	}
	return c
}
