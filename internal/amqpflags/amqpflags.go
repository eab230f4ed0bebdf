// Package amqpflags gives the tools (hyperflow-top, hyperflow-submit, the
// metric collector) the executor's settings of the broker connection: TLS
// and the order in which a cluster's URLs are tried (amqp_url_order), with
// the same flags and environment variables, so that one set of files and
// variables works for every program.
package amqpflags

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// tlsFlags: flag name, environment variable, help, and the field.
var tlsFlags = []struct {
	flag, env, help string
	field           func(*eventbus.TLSFiles) *string
}{
	{"amqp-tls-ca-file", "AMQP_TLS_CA_FILE", "amqps: CA certificate (PEM) of the broker (URL query: cacertfile; default: system roots)",
		func(t *eventbus.TLSFiles) *string { return &t.CAFile }},
	{"amqp-tls-cert-file", "AMQP_TLS_CERT_FILE", "amqps: client certificate (PEM), for brokers that require one or auth_mechanism=external (URL query: certfile)",
		func(t *eventbus.TLSFiles) *string { return &t.CertFile }},
	{"amqp-tls-key-file", "AMQP_TLS_KEY_FILE", "amqps: the client certificate's key (PEM) (URL query: keyfile)",
		func(t *eventbus.TLSFiles) *string { return &t.KeyFile }},
	{"amqp-tls-server-name", "AMQP_TLS_SERVER_NAME", "amqps: name the broker's certificate must carry (URL query: server_name_indication)",
		func(t *eventbus.TLSFiles) *string { return &t.ServerName }},
}

// AddTLS defines the TLS flags on fs, filling t.
func AddTLS(fs *pflag.FlagSet, t *eventbus.TLSFiles) {
	for _, f := range tlsFlags {
		fs.StringVar(f.field(t), f.flag, "", f.help+" (env "+f.env+")")
	}
}

// TLSFromEnv fills the fields of t whose flag was not given from the
// environment (getenv), as flags override the environment.
func TLSFromEnv(fs *pflag.FlagSet, getenv func(string) string, t *eventbus.TLSFiles) {
	for _, f := range tlsFlags {
		if v := getenv(f.env); v != "" && !fs.Changed(f.flag) {
			*f.field(t) = v
		}
	}
}

// The flag and environment variable of amqp_url_order.
const (
	OrderFlag = "amqp-url-order"
	OrderEnv  = "AMQP_URL_ORDER"
)

// AddOrder defines --amqp-url-order on fs, filling order (default
// eventbus.OrderShuffle).
func AddOrder(fs *pflag.FlagSet, order *string) {
	fs.StringVar(order, OrderFlag, eventbus.OrderShuffle, "how several --amqp-url URLs are tried: "+eventbus.OrderShuffle+
		" (once at start) or "+eventbus.OrderOrdered+"; on loss, the next (env "+OrderEnv+")")
}

// OrderFromEnv sets order from the environment (getenv) when the flag was
// not given, as flags override the environment, and checks it: a value
// other than shuffle or ordered is refused with an error naming the flag or
// the variable it came from.
func OrderFromEnv(fs *pflag.FlagSet, getenv func(string) string, order *string) error {
	from := "--" + OrderFlag
	if v := getenv(OrderEnv); v != "" && !fs.Changed(OrderFlag) {
		*order, from = v, OrderEnv
	}
	if *order == "" {
		return fmt.Errorf("%s: must be %s or %s, got nothing", from, eventbus.OrderShuffle, eventbus.OrderOrdered)
	}
	if err := eventbus.CheckOrder(*order); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return nil
}
