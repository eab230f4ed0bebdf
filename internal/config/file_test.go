package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// loadYAML applies src over Default() as the file "settings.yml".
func loadYAML(t *testing.T, src string, env map[string]string) (Settings, []string, error) {
	t.Helper()
	s := Default()
	var warnings []string
	err := applyYAML(&s, "settings.yml", []byte(src), envMap(env), func(w string) { warnings = append(warnings, w) }, nil)
	return s, warnings, err
}

func TestFileValues(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		env    map[string]string
		change func(s *Settings) // applied to Default() to get the wanted settings
	}{
		{"empty file", "", nil, func(*Settings) {}},
		{"only comments", "# nothing\n\n", nil, func(*Settings) {}},
		{"null document", "~\n", nil, func(*Settings) {}},
		{
			"plain keys, every top-level setting",
			`amqp_url: amqp://u:p@rabbit:5672/
amqp_queue: jobs
storage: nfs
threads: 3
job_timeout: 90s
shutdown_grace: 600
heartbeat_interval: 1.5
output_tail: 1024
tmp_dir: /scratch
log_level: DEBUG
log_format: JSON
metrics_addr: 127.0.0.1:9100
events_exchange: ev
max_message_size: 2048
`, nil,
			func(s *Settings) {
				s.AMQPURL = "amqp://u:p@rabbit:5672/"
				s.Queue = "jobs"
				s.Storage = "nfs"
				s.Threads = 3
				s.JobTimeout = 90 * time.Second
				s.ShutdownGrace = 10 * time.Minute
				s.HeartbeatInterval = 1500 * time.Millisecond
				s.OutputTail = 1024
				s.TmpDir = "/scratch"
				s.LogLevel = "debug"
				s.LogFormat = "json"
				s.MetricsAddr = "127.0.0.1:9100"
				s.EventsExchange = "ev"
				s.MaxMessageSize = 2048
			},
		},
		{
			"symbol keys at every level, every section",
			`:cloud_storage:
  :provider: AWS
  :aws_access_key_id: AKIA
  :aws_secret_access_key: sec
  :region: eu-west-1
  :endpoint: http://127.0.0.1:9000
  :path_style: true
:plgdata:
  :proxy: /tmp/x509up
  :endpoint: https://plgdata.example.org
:gridftp:
  :proxy: /tmp/gridproxy
`, nil,
			func(s *Settings) {
				s.Cloud = Cloud{Provider: "AWS", AccessKeyID: "AKIA", SecretAccessKey: "sec", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true}
				s.PLGData = PLGData{Proxy: "/tmp/x509up", Endpoint: "https://plgdata.example.org"}
				s.GridFTP = GridFTP{Proxy: "/tmp/gridproxy"}
			},
		},
		{
			"mixed key styles",
			"storage: local\n:cloud_storage:\n  region: ap-south-1\ncloud_storage_extra: 1\n", nil,
			func(s *Settings) { s.Storage = "local"; s.Cloud.Region = "ap-south-1" },
		},
		{
			"empty and null values count as unset",
			"amqp_url:\nstorage: ''\nthreads: ~\ncloud_storage:\n  region: \"\"\nplgdata:\ngridftp: null\n", nil,
			func(*Settings) {},
		},
		{
			"templates that render empty count as unset",
			"amqp_url: <%= ENV['AMQP_URL'] %>\nthreads: <%= ENV['THREADS'] %>\ncloud_storage:\n  region: <%= ENV['AWS_REGION'] %>\n", nil,
			func(*Settings) {},
		},
		{
			"templates rendered",
			"amqp_url: <%= ENV['AMQP_URL'] %>\nthreads: <%= ENV['THREADS'] || '7' %>\ncloud_storage:\n  region: '<%= ENV[\"AWS_REGION\"] %>'\n",
			map[string]string{"AMQP_URL": "amqp://x:y@z/", "AWS_REGION": "sa-east-1"},
			func(s *Settings) { s.AMQPURL = "amqp://x:y@z/"; s.Threads = 7; s.Cloud.Region = "sa-east-1" },
		},
		{
			"quoted numbers and yaml aliases",
			"threads: \"4\"\noutput_tail: &n 100\nmax_message_size: *n\n", nil,
			func(s *Settings) { s.Threads = 4; s.OutputTail = 100; s.MaxMessageSize = 100 },
		},
		{
			"path_style words",
			"cloud_storage:\n  path_style: yes\n", nil,
			func(s *Settings) { s.Cloud.PathStyle = true },
		},
		{
			"durations",
			"job_timeout: 1h30m\nshutdown_grace: 0\nheartbeat_interval: 250ms\n", nil,
			func(s *Settings) {
				s.JobTimeout = 90 * time.Minute
				s.ShutdownGrace = 0
				s.HeartbeatInterval = 250 * time.Millisecond
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := loadYAML(t, tt.src, tt.env)
			if err != nil {
				t.Fatalf("applyYAML: %v", err)
			}
			want := Default()
			tt.change(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("settings differ:\n got %s\nwant %s", dump(got), dump(want))
			}
		})
	}
}

func TestFileWarnings(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"none", "storage: nfs\ncloud_storage:\n  provider: AWS\n", nil},
		{"provider lower case", "cloud_storage:\n  provider: aws\n", nil},
		{
			"unknown keys at every level",
			"storage: nfs\n:colour: blue\ncloud_storage:\n  :bucket: b\nplgdata:\n  proxy: p\n  extra:\n    - 1\n",
			[]string{
				`settings.yml:2: unknown setting "colour" is ignored`,
				`settings.yml:4: unknown setting "cloud_storage.bucket" is ignored`,
				`settings.yml:7: unknown setting "plgdata.extra" is ignored`,
			},
		},
		{
			"other provider",
			"cloud_storage:\n  provider: Google\n",
			[]string{`settings.yml:2: cloud_storage.provider "Google" is ignored: only S3 (AWS) is supported`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := loadYAML(t, tt.src, nil)
			if err != nil {
				t.Fatalf("applyYAML: %v", err)
			}
			if !reflect.DeepEqual(warnings, tt.want) {
				t.Errorf("warnings = %q, want %q", warnings, tt.want)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the whole message
	}{
		{"integer", "storage: nfs\n\nthreads: abc\n", `settings.yml:3: threads: cannot parse "abc" as an integer`},
		{"float as integer", "output_tail: 1.5\n", `settings.yml:1: output_tail: cannot parse "1.5" as an integer`},
		{"duration", "job_timeout: soon\n", `settings.yml:1: job_timeout: cannot parse "soon" as a duration (like 90s, 10m, or a number of seconds)`},
		{"bool", "cloud_storage:\n  path_style: maybe\n", `settings.yml:2: cloud_storage.path_style: cannot parse "maybe" as a boolean (true or false)`},
		{"list for a value", "threads:\n  - 1\n", `settings.yml:2: threads: expected a single value, got a list`},
		{"mapping for a value", "storage: {a: b}\n", `settings.yml:1: storage: expected a single value, got a mapping`},
		{"scalar for a section", ":cloud_storage: s3\n", `settings.yml:1: cloud_storage: expected a mapping of settings, got the value "s3"`},
		{"list at the top", "- a\n- b\n", `settings.yml:1: expected a mapping of settings (key: value), got a list`},
		{"scalar at the top", "hello\n", `settings.yml:1: expected a mapping of settings (key: value), got the value "hello"`},
		{"duplicate key", "storage: nfs\n:storage: local\n", `settings.yml:2: storage: set twice (first on line 1)`},
		{"duplicate nested key", "cloud_storage:\n  region: a\n  :region: b\n", `settings.yml:3: cloud_storage.region: set twice (first on line 2)`},
		{"syntax", "storage: nfs\nthreads: 4: 5\n", `settings.yml:2: mapping values are not allowed in this context`},
		{"tab indentation", "cloud_storage:\n\tregion: a\n", `settings.yml:2: found character that cannot start any token (indent YAML with spaces, not tabs)`},
		{"template", "storage: nfs\nthreads: <%= 2 * 3 %>\n", `settings.yml:2: template <%= 2 * 3 %>: unsupported template; only ` + supportedTags + ` are supported`},
		{"complex key", "? [a, b]\n: c\n", `settings.yml:1: expected a setting name as key, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadYAML(t, tt.src, nil)
			if err == nil {
				t.Fatalf("applyYAML(%q) succeeded, want error %q", tt.src, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\n     want %q", err, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"90s", 90 * time.Second, false},
		{"10m", 10 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"600", 600 * time.Second, false},
		{" 600 ", 600 * time.Second, false},
		{"0", 0, false},
		{"0.25", 250 * time.Millisecond, false},
		{"-5", -5 * time.Second, false}, // Validate rejects it, naming the setting
		{"-1m", -time.Minute, false},
		{"", 0, true},
		{"10 minutes", 0, true},
		{"inf", 0, true},
		{"NaN", 0, true},
		{"1e30", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseDuration(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// dump shows settings with their secrets, for test failures only.
func dump(s Settings) string {
	var b strings.Builder
	table := settingTable()
	for i := range table {
		v := table[i].display(&s)
		if p, ok := table[i].field(&s).(*Secret); ok {
			v = p.Reveal()
		}
		b.WriteString("\n  " + table[i].key + "=" + v)
	}
	return b.String()
}
