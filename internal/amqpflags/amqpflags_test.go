package amqpflags

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

func TestFlagsOverrideEnvironment(t *testing.T) {
	var got eventbus.TLSFiles
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddTLS(fs, &got)
	if err := fs.Parse([]string{"--amqp-tls-ca-file", "/flag/ca.pem", "--amqp-tls-server-name", "flag.example"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AMQP_TLS_CA_FILE": "/env/ca.pem", "AMQP_TLS_CERT_FILE": "/env/c.pem",
		"AMQP_TLS_KEY_FILE": "/env/k.pem", "AMQP_TLS_SERVER_NAME": "env.example"}
	TLSFromEnv(fs, func(k string) string { return env[k] }, &got)
	want := eventbus.TLSFiles{CAFile: "/flag/ca.pem", CertFile: "/env/c.pem", KeyFile: "/env/k.pem", ServerName: "flag.example"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestOrder(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     string
		want    string
		wantErr string
	}{
		{name: "default", want: eventbus.OrderShuffle},
		{name: "flag", args: []string{"--amqp-url-order", "ordered"}, want: eventbus.OrderOrdered},
		{name: "env", env: "ordered", want: eventbus.OrderOrdered},
		{name: "flag over env", args: []string{"--amqp-url-order=shuffle"}, env: "ordered", want: eventbus.OrderShuffle},
		{name: "bad flag", args: []string{"--amqp-url-order", "random"},
			wantErr: `--amqp-url-order: must be shuffle or ordered, got "random"`},
		{name: "bad env", env: "Ordered", wantErr: `AMQP_URL_ORDER: must be shuffle or ordered, got "Ordered"`},
		{name: "empty flag", args: []string{"--amqp-url-order="}, wantErr: "--amqp-url-order: must be shuffle or ordered, got nothing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			AddOrder(fs, &got)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			err := OrderFromEnv(fs, func(k string) string {
				if k == OrderEnv {
					return c.env
				}
				return ""
			}, &got)
			switch {
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want %q", err, c.wantErr)
			case c.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case c.wantErr == "" && got != c.want:
				t.Errorf("order %q, want %q", got, c.want)
			}
		})
	}
}
