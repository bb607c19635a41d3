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

// Config says where ClickHouse is and how long to wait for it.
type Config struct {
	// Addr is the native-protocol address, host:port (ClickHouse's tcp_port, 9000 by
	// default). Several servers of one cluster may be given separated by commas; they are
	// tried in order.
	Addr string
	// Database holds riskflow's tables; "" means "riskflow". It must be a plain identifier
	// (letters, digits, underscore, not starting with a digit).
	Database string
	// Username and Password authenticate; "" means ClickHouse's "default" user.
	Username, Password string
	// DialTimeout bounds opening one connection; 0 means 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds writing a batch to one table, and any single wait for the
	// server's answer; 0 means 30 s. A shorter deadline on the caller's context wins.
	WriteTimeout time.Duration
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports what is wrong with c, naming the field. Zero values that have a
// default are fine.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Addr) == "" {
		errs = append(errs, errors.New("chsink: config: addr is required (host:port of the native protocol)"))
	} else {
		for _, a := range splitAddrs(c.Addr) {
			if err := checkAddr(a); err != nil {
				errs = append(errs, fmt.Errorf("chsink: config: addr %q: %w", a, err))
			}
		}
	}
	if c.Database != "" && (!identRE.MatchString(c.Database) || len(c.Database) > 128) {
		errs = append(errs, fmt.Errorf("chsink: config: database %q must be letters, digits and _ (not starting with a digit, at most 128)", c.Database))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("chsink: config: dial_timeout %v must not be negative", c.DialTimeout))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("chsink: config: write_timeout %v must not be negative", c.WriteTimeout))
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
	return c
}
