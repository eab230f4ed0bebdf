package config

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const originalFile = "testdata/original-settings.yml"

// writeFile writes a settings file into a fresh temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "settings.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOriginalFileUnchanged(t *testing.T) {
	// The file must be the original one (docs/config.md), byte for byte.
	want := "# RabbitMQ URL, defaults to ENV['AMQP_URL']\n" +
		":amqp_url: <%= ENV['AMQP_URL'] %>\n" +
		":storage: <%= ENV['STORAGE'] || 'cloud' %>\n" +
		":threads: <%= Executor::cpu_count %>\n" +
		":cloud_storage:\n" +
		"  :provider: AWS\n" +
		"  :aws_access_key_id:        <%= ENV['AWS_ACCESS_KEY_ID'] %>\n" +
		"  :aws_secret_access_key:    <%= ENV['AWS_SECRET_ACCESS_KEY'] %>\n" +
		"  :region:                   <%= ENV['AWS_REGION'] %>\n" +
		":plgdata:\n" +
		"  :proxy: <%= ENV['X509_USER_PROXY'] or \"./grid_proxy \"%>\n"
	got, err := os.ReadFile(originalFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s changed:\n%q\nwant\n%q", originalFile, got, want)
	}
}

// TestLoadOriginalFile is the golden test of the original example file.
func TestLoadOriginalFile(t *testing.T) {
	cpus := max(runtime.NumCPU(), 1)
	tests := []struct {
		name string
		env  map[string]string
		want func() Settings
	}{
		{
			name: "empty environment",
			env:  nil,
			want: func() Settings {
				s := Default()
				s.Threads = cpus
				s.Cloud = Cloud{Provider: "AWS", Region: "us-east-1"}
				s.PLGData = PLGData{Proxy: "./grid_proxy ", Endpoint: "https://data.plgrid.pl"}
				return s
			},
		},
		{
			name: "deployment environment",
			env: map[string]string{
				"AMQP_URL":              "amqp://hyperflow:s3cret@rabbitmq.cluster:5672/",
				"AWS_ACCESS_KEY_ID":     "AKIAIOSFODNN7EXAMPLE",
				"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				"AWS_REGION":            "eu-central-1",
				"X509_USER_PROXY":       "/tmp/x509up_u1000",
			},
			want: func() Settings {
				s := Default()
				s.AMQPURL = "amqp://hyperflow:s3cret@rabbitmq.cluster:5672/"
				s.Storage = "cloud"
				s.Threads = cpus
				s.Cloud = Cloud{
					Provider:        "AWS",
					AccessKeyID:     "AKIAIOSFODNN7EXAMPLE",
					SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
					Region:          "eu-central-1",
				}
				s.PLGData = PLGData{Proxy: "/tmp/x509up_u1000", Endpoint: "https://data.plgrid.pl"}
				s.GridFTP = GridFTP{Proxy: "/tmp/x509up_u1000"}
				return s
			},
		},
		{
			name: "storage, threads and S3-compatible endpoint from the environment",
			env: map[string]string{
				"STORAGE":             "nfs",
				"THREADS":             "2",
				"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
			},
			want: func() Settings {
				s := Default()
				s.Storage = "nfs"
				s.Threads = 2
				s.Cloud = Cloud{Provider: "AWS", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true}
				s.PLGData = PLGData{Proxy: "./grid_proxy ", Endpoint: "https://data.plgrid.pl"}
				return s
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, fl, err := Load([]string{originalFile}, envMap(tt.env), &stderr)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := tt.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("settings differ:\n got %s\nwant %s", dump(got), dump(want))
			}
			if fl.File != originalFile || fl.Help || fl.Version || fl.Check {
				t.Errorf("flags = %+v", fl)
			}
			if len(fl.Warnings) != 0 {
				t.Errorf("warnings = %q, want none", fl.Warnings)
			}
			if stderr.Len() != 0 {
				t.Errorf("Load wrote to stderr: %q", stderr.String())
			}
		})
	}
}

// input is one way of giving a setting, in each of the three sources.
type input struct {
	key  string // YAML key, dotted
	env  string // "" if none
	flag string // "" if none
	raw  string
	want func(s *Settings) // sets the expected value in Default()
}

// everySetting gives a non-default value for each setting.
func everySetting() []input {
	return []input{
		{"amqp_url", "AMQP_URL", "amqp-url", "amqps://u:p@h:5671/v", func(s *Settings) { s.AMQPURL = "amqps://u:p@h:5671/v" }},
		{"amqp_url_order", "AMQP_URL_ORDER", "amqp-url-order", "ordered", func(s *Settings) { s.AMQPURLOrder = "ordered" }},
		{"amqp_tls_ca_file", "AMQP_TLS_CA_FILE", "amqp-tls-ca-file", "/ca.pem", func(s *Settings) { s.AMQPTLSCAFile = "/ca.pem" }},
		{"amqp_tls_cert_file", "AMQP_TLS_CERT_FILE", "amqp-tls-cert-file", "/c.pem", func(s *Settings) { s.AMQPTLSCertFile = "/c.pem" }},
		{"amqp_tls_key_file", "AMQP_TLS_KEY_FILE", "amqp-tls-key-file", "/k.pem", func(s *Settings) { s.AMQPTLSKeyFile = "/k.pem" }},
		{"amqp_tls_server_name", "AMQP_TLS_SERVER_NAME", "amqp-tls-server-name", "broker.example", func(s *Settings) { s.AMQPTLSServerName = "broker.example" }},
		{"amqp_queue", "AMQP_QUEUE", "queue", "q2", func(s *Settings) { s.Queue = "q2" }},
		{"storage", "STORAGE", "storage", "gridftp", func(s *Settings) { s.Storage = "gridftp" }},
		{"threads", "THREADS", "threads", "17", func(s *Settings) { s.Threads = 17 }},
		{"job_timeout", "JOB_TIMEOUT", "job-timeout", "90s", func(s *Settings) { s.JobTimeout = 90 * time.Second }},
		{"shutdown_grace", "SHUTDOWN_GRACE", "shutdown-grace", "30", func(s *Settings) { s.ShutdownGrace = 30 * time.Second }},
		{"heartbeat_interval", "HEARTBEAT_INTERVAL", "heartbeat-interval", "2m", func(s *Settings) { s.HeartbeatInterval = 2 * time.Minute }},
		{"output_tail", "OUTPUT_TAIL", "output-tail", "4096", func(s *Settings) { s.OutputTail = 4096 }},
		{"tmp_dir", "HYPERFLOW_TMPDIR", "tmp-dir", "/var/tmp/hf", func(s *Settings) { s.TmpDir = "/var/tmp/hf" }},
		{"log_level", "LOG_LEVEL", "log-level", "Warn", func(s *Settings) { s.LogLevel = "warn" }},
		{"log_format", "LOG_FORMAT", "log-format", "json", func(s *Settings) { s.LogFormat = "json" }},
		{"metrics_addr", "METRICS_ADDR", "metrics-addr", "127.0.0.1:9100", func(s *Settings) { s.MetricsAddr = "127.0.0.1:9100" }},
		{"events_exchange", "EVENTS_EXCHANGE", "events-exchange", "ev2", func(s *Settings) { s.EventsExchange = "ev2" }},
		{"events_stream", "EVENTS_STREAM", "events-stream", "ev2.history", func(s *Settings) { s.EventsStream = "ev2.history" }},
		{"events_stream_max_age", "EVENTS_STREAM_MAX_AGE", "events-stream-max-age", "36h", func(s *Settings) { s.EventsStreamMaxAge = 36 * time.Hour }},
		{"events_stream_max_bytes", "EVENTS_STREAM_BYTES", "events-stream-bytes", "5000000", func(s *Settings) { s.EventsStreamMaxBytes = 5000000 }},
		{"max_message_size", "MAX_MESSAGE_SIZE", "max-message-size", "1000", func(s *Settings) { s.MaxMessageSize = 1000 }},
		{"progress_interval", "PROGRESS_INTERVAL", "progress-interval", "10s", func(s *Settings) { s.ProgressInterval = 10 * time.Second }},
		{"events", "EVENTS", "events", "Lifecycle", func(s *Settings) { s.Events = EventsLifecycle }},
		{"staging_concurrency", "STAGING_CONCURRENCY", "staging-concurrency", "4", func(s *Settings) { s.StagingConcurrency = 4 }},
		{"connect_attempts", "CONNECT_ATTEMPTS", "connect-attempts", "3", func(s *Settings) { s.ConnectAttempts = 3 }},
		{"consumer_timeout", "CONSUMER_TIMEOUT", "consumer-timeout", "2h", func(s *Settings) { s.ConsumerTimeout = 2 * time.Hour }},
		{"max_deliveries", "MAX_DELIVERIES", "max-deliveries", "9", func(s *Settings) { s.MaxDeliveries = 9 }},
		{"queue_type", "QUEUE_TYPE", "queue-type", "quorum", func(s *Settings) { s.QueueType = "quorum" }},
		{"dead_letter_exchange", "DEAD_LETTER_EXCHANGE", "dead-letter-exchange", "dlx", func(s *Settings) { s.DeadLetterExchange = "dlx" }},
		// worker_pool also needs queue_name (see poolEnv) and sets threads to 1.
		{"worker_pool", "WORKER_POOL", "worker-pool", "true", func(s *Settings) { s.WorkerPool, s.PoolQueue, s.Threads = true, "q", 1 }},
		{"queue_name", "QUEUE_NAME", "queue-name", "montage.mProject", func(s *Settings) { s.PoolQueue = "montage.mProject" }},
		{"rabbit_hostname", "RABBIT_HOSTNAME", "rabbit-hostname", "u:p@rmq:5672", func(s *Settings) { s.RabbitHostname = "u:p@rmq:5672" }},
		{"redis_url", "REDIS_URL", "redis-url", "redis://:pw@redis:6380/1", func(s *Settings) { s.RedisURL = "redis://:pw@redis:6380/1" }},
		{"rabbit_prefetch_size", "RABBIT_PREFETCH_SIZE", "prefetch", "4", func(s *Settings) { s.Prefetch = 4 }},
		{"work_dir", "HF_VAR_WORK_DIR", "work-dir", "/wd", func(s *Settings) { s.WorkDir = "/wd" }},
		{"input_dir", "HF_VAR_INPUT_DIR", "input-dir", "/in", func(s *Settings) { s.InputDir = "/in" }},
		{"output_dir", "HF_VAR_OUTPUT_DIR", "output-dir", "/out", func(s *Settings) { s.OutputDir = "/out" }},
		{"log_dir", "HF_VAR_LOG_DIR", "log-dir", "/logs", func(s *Settings) { s.LogDir = "/logs" }},
		{"wait_for_input_files", "HF_VAR_WAIT_FOR_INPUT_FILES", "wait-for-input-files", "1", func(s *Settings) { s.WaitForInputFiles = true }},
		{"file_watch_num_retries", "HF_VAR_FILE_WATCH_NUM_RETRIES", "file-watch-num-retries", "3", func(s *Settings) { s.FileWatchRetries = 3 }},
		{"number_of_retries", "HF_VAR_NUMBER_OF_RETRIES", "number-of-retries", "2", func(s *Settings) { s.TaskAttempts = 2 }},
		{"backoff_seed", "HF_VAR_BACKOFF_SEED", "backoff-seed", "0", func(s *Settings) { s.BackoffSeed = 0 }},
		{"node_name", "HF_LOG_NODE_NAME", "node-name", "node-7", func(s *Settings) { s.NodeName = "node-7" }},
		{"pod_name", "HF_LOG_POD_NAME", "pod-name", "pod-x", func(s *Settings) { s.PodName = "pod-x" }},
		{"cloud_storage.provider", "", "", "AWS", func(s *Settings) { s.Cloud.Provider = "AWS" }},
		{"cloud_storage.aws_access_key_id", "AWS_ACCESS_KEY_ID", "", "AKIA1", func(s *Settings) { s.Cloud.AccessKeyID = "AKIA1" }},
		{"cloud_storage.aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "", "sk1", func(s *Settings) { s.Cloud.SecretAccessKey = "sk1" }},
		{"cloud_storage.region", "AWS_REGION", "", "ap-east-1", func(s *Settings) { s.Cloud.Region = "ap-east-1" }},
		{"cloud_storage.endpoint", "AWS_ENDPOINT_URL_S3", "", "http://127.0.0.1:7070", func(s *Settings) { s.Cloud.Endpoint = "http://127.0.0.1:7070" }},
		{"cloud_storage.path_style", "", "", "true", func(s *Settings) { s.Cloud.PathStyle = true }},
		{"plgdata.proxy", "X509_USER_PROXY", "", "/p", func(s *Settings) { s.PLGData.Proxy = "/p" }},
		{"plgdata.endpoint", "PLGDATA_ENDPOINT", "", "https://plg.example", func(s *Settings) { s.PLGData.Endpoint = "https://plg.example" }},
		{"gridftp.proxy", "X509_USER_PROXY", "", "/p", func(s *Settings) { s.GridFTP.Proxy = "/p" }},
	}
}

// yamlFor writes a dotted key as nested YAML.
func yamlFor(key, value string) string {
	if section, sub, ok := strings.Cut(key, "."); ok {
		return section + ":\n  " + sub + ": " + value + "\n"
	}
	return key + ": " + value + "\n"
}

// poolEnv is the environment a setting needs besides itself: the
// worker-pool mode is only valid with its queue.
func poolEnv(key string) map[string]string {
	if key == "worker_pool" {
		return map[string]string{"QUEUE_NAME": "q"}
	}
	return nil
}

func TestLoadEverySettingFromEachSource(t *testing.T) {
	for _, in := range everySetting() {
		t.Run(in.key+"/file", func(t *testing.T) {
			got, _, err := Load([]string{writeFile(t, yamlFor(in.key, in.raw))}, envMap(poolEnv(in.key)), nil)
			checkLoaded(t, got, err, in.want)
		})
		if in.env != "" {
			t.Run(in.key+"/env", func(t *testing.T) {
				env := map[string]string{in.env: in.raw}
				maps.Copy(env, poolEnv(in.key))
				got, _, err := Load(nil, envMap(env), nil)
				checkLoaded(t, got, err, func(s *Settings) {
					in.want(s)
					switch in.env {
					case "X509_USER_PROXY": // sets both proxies
						s.PLGData.Proxy, s.GridFTP.Proxy = in.raw, in.raw
					case "AWS_ENDPOINT_URL_S3":
						s.Cloud.PathStyle = true
					}
				})
			})
		}
		if in.flag != "" {
			t.Run(in.key+"/flag", func(t *testing.T) {
				args := []string{"--" + in.flag, in.raw}
				if _, isBool := settingByKey(t, in.key).field(&Settings{}).(*bool); isBool {
					args = args[:1] // a boolean flag alone means true
				}
				got, _, err := Load(args, envMap(poolEnv(in.key)), nil)
				checkLoaded(t, got, err, in.want)
			})
			t.Run(in.key+"/flag=", func(t *testing.T) {
				got, _, err := Load([]string{"--" + in.flag + "=" + in.raw}, envMap(poolEnv(in.key)), nil)
				checkLoaded(t, got, err, in.want)
			})
		}
	}
}

func settingByKey(t *testing.T, key string) *setting {
	t.Helper()
	table := settingTable()
	for i := range table {
		if table[i].key == key {
			return &table[i]
		}
	}
	t.Fatalf("no setting %q", key)
	return nil
}

func checkLoaded(t *testing.T, got Settings, err error, change func(*Settings)) {
	t.Helper()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Default()
	change(&want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings differ:\n got %s\nwant %s", dump(got), dump(want))
	}
}

func TestLoadPrecedence(t *testing.T) {
	const file = "storage: nfs\nthreads: 3\njob_timeout: 1m\nmetrics_addr: 127.0.0.1:1\ncloud_storage:\n  endpoint: http://file:9000\n  path_style: false\n"
	tests := []struct {
		name   string
		args   []string // the file is added first
		env    map[string]string
		change func(s *Settings)
	}{
		{
			name: "file over defaults",
			change: func(s *Settings) {
				s.Storage, s.Threads, s.JobTimeout, s.MetricsAddr = "nfs", 3, time.Minute, "127.0.0.1:1"
				s.Cloud.Endpoint = "http://file:9000"
			},
		},
		{
			name: "env over file",
			env:  map[string]string{"STORAGE": "local", "THREADS": "5", "AWS_ENDPOINT_URL_S3": "http://env:9000"},
			change: func(s *Settings) {
				s.Storage, s.Threads, s.JobTimeout, s.MetricsAddr = "local", 5, time.Minute, "127.0.0.1:1"
				s.Cloud.Endpoint, s.Cloud.PathStyle = "http://env:9000", true
			},
		},
		{
			name: "empty env is unset",
			env:  map[string]string{"STORAGE": "", "THREADS": "", "METRICS_ADDR": ""},
			change: func(s *Settings) {
				s.Storage, s.Threads, s.JobTimeout, s.MetricsAddr = "nfs", 3, time.Minute, "127.0.0.1:1"
				s.Cloud.Endpoint = "http://file:9000"
			},
		},
		{
			name: "flags over env and file, only those given",
			args: []string{"--threads", "7", "--job-timeout=0"},
			env:  map[string]string{"STORAGE": "local", "THREADS": "5"},
			change: func(s *Settings) {
				s.Storage, s.Threads, s.JobTimeout, s.MetricsAddr = "local", 7, 0, "127.0.0.1:1"
				s.Cloud.Endpoint = "http://file:9000"
			},
		},
		{
			name: "an empty flag sets the setting",
			args: []string{"--metrics-addr="},
			env:  map[string]string{"METRICS_ADDR": "127.0.0.1:2"},
			change: func(s *Settings) {
				s.Storage, s.Threads, s.JobTimeout, s.MetricsAddr = "nfs", 3, time.Minute, ""
				s.Cloud.Endpoint = "http://file:9000"
			},
		},
		{
			name: "flags before the file",
			args: []string{"--storage", "s3", "--check"},
			change: func(s *Settings) {
				s.Storage, s.Threads, s.JobTimeout, s.MetricsAddr = "s3", 3, time.Minute, "127.0.0.1:1"
				s.Cloud.Endpoint = "http://file:9000"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, file)
			got, fl, err := Load(append([]string{path}, tt.args...), envMap(tt.env), nil)
			checkLoaded(t, got, err, tt.change)
			if fl.File != path {
				t.Errorf("Flags.File = %q, want %q", fl.File, path)
			}
		})
	}
}

func TestLoadFlags(t *testing.T) {
	broken := "threads: [\n"
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		want       Flags // Usage and Warnings not compared
		wantErr    string
		wantUsage  bool // usage written to stderr
		brokenFile bool // add a broken settings file to args
	}{
		{name: "nothing", args: nil},
		{name: "help", args: []string{"--help"}, want: Flags{Help: true}},
		{name: "-h", args: []string{"-h"}, want: Flags{Help: true}},
		{name: "help ignores a broken file and env", args: []string{"-h"}, env: map[string]string{"THREADS": "x"}, want: Flags{Help: true}, brokenFile: true},
		{name: "version ignores a broken file", args: []string{"--version"}, want: Flags{Version: true}, brokenFile: true},
		{name: "check", args: []string{"--check"}, want: Flags{Check: true}},
		{name: "check reports a broken file", args: []string{"--check"}, want: Flags{Check: true}, brokenFile: true, wantErr: "settings.yml:1: did not find expected node content"},
		{name: "unknown flag", args: []string{"--colour"}, wantErr: "command line: unknown flag: --colour", wantUsage: true},
		{name: "flag without value", args: []string{"--threads"}, wantErr: "command line: flag needs an argument: --threads", wantUsage: true},
		{name: "sub-keys have no flags", args: []string{"--region", "x"}, wantErr: "command line: unknown flag: --region", wantUsage: true},
		{name: "two files", args: []string{"a.yml", "b.yml"}, wantErr: "command line: expected at most one settings file, got 2 arguments: a.yml b.yml", wantUsage: true},
		{name: "missing file", args: []string{"does-not-exist.yml"}, wantErr: "read settings file: open does-not-exist.yml: no such file or directory"},
		{name: "bad flag value", args: []string{"--threads", "many"}, wantErr: `flag --threads: cannot parse "many" as an integer`},
		{name: "bad env value", env: map[string]string{"JOB_TIMEOUT": "later"}, wantErr: `environment variable JOB_TIMEOUT: cannot parse "later" as a duration (like 90s, 10m, or a number of seconds)`},
		{name: "invalid result", args: []string{"--threads", "0"}, wantErr: "invalid settings: threads: must be at least 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.brokenFile {
				args = append(args, writeFile(t, broken))
			}
			var stderr bytes.Buffer
			_, fl, err := Load(args, envMap(tt.env), &stderr)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.HasSuffix(err.Error(), tt.wantErr)) {
				t.Fatalf("Load error = %v, want it to end with %q", err, tt.wantErr)
			}
			if fl.Help != tt.want.Help || fl.Version != tt.want.Version || fl.Check != tt.want.Check {
				t.Errorf("Flags = %+v, want %+v", fl, tt.want)
			}
			if !strings.Contains(fl.Usage, "Usage: hyperflow-amqp-executor") {
				t.Errorf("Flags.Usage not filled in: %q", fl.Usage)
			}
			if gotUsage := stderr.String() == fl.Usage; gotUsage != tt.wantUsage {
				t.Errorf("stderr = %q, want usage: %v", stderr.String(), tt.wantUsage)
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	path := writeFile(t, "storage: nfs\nbucket: b\ncloud_storage:\n  provider: azure\n")
	_, fl, err := Load([]string{path}, envMap(map[string]string{"AWS_ACCESS_KEY_ID": "AKIA"}), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		path + `:2: unknown setting "bucket" is ignored`,
		path + `:4: cloud_storage.provider "azure" is ignored: only S3 (AWS) is supported`,
		"cloud_storage: only one of aws_access_key_id and aws_secret_access_key is set; the AWS SDK needs both to use them",
	}
	if !reflect.DeepEqual(fl.Warnings, want) {
		t.Errorf("warnings =\n%q\nwant\n%q", fl.Warnings, want)
	}
}

// TestEverySettingEverywhere checks that the table covers every field of
// Settings, that each setting has an env variable and (outside the
// sections) a flag, and that --help shows them all with their defaults.
func TestEverySettingEverywhere(t *testing.T) {
	var keys []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag == "" {
				t.Errorf("field %s%s has no yaml tag", prefix, f.Name)
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(prefix+tag+".", f.Type)
				continue
			}
			keys = append(keys, prefix+tag)
		}
	}
	walk("", reflect.TypeFor[Settings]())

	table := settingTable()
	var tableKeys []string
	for _, st := range table {
		tableKeys = append(tableKeys, st.key)
	}
	if !reflect.DeepEqual(slices.Sorted(slices.Values(keys)), slices.Sorted(slices.Values(tableKeys))) {
		t.Errorf("settings table keys\n%q\ndiffer from the Settings fields\n%q", tableKeys, keys)
	}
	var tested []string
	for _, in := range everySetting() {
		tested = append(tested, in.key)
	}
	if !reflect.DeepEqual(tested, tableKeys) {
		t.Errorf("everySetting() tests\n%q\nnot every setting\n%q", tested, tableKeys)
	}

	_, fl, err := Load([]string{"--help"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(fl.Usage, "\n")
	def := Default()
	noEnv := map[string]bool{"cloud_storage.provider": true, "cloud_storage.path_style": true}
	for _, st := range table {
		nested := strings.Contains(st.key, ".")
		if st.env == "" && !noEnv[st.key] {
			t.Errorf("%s has no env variable", st.key)
		}
		if !nested && st.flag == "" {
			t.Errorf("%s has no flag", st.key)
		}
		if nested && st.flag != "" {
			t.Errorf("%s has a flag; docs/config.md gives the sections env only", st.key)
		}
		if st.desc == "" {
			t.Errorf("%s has no description", st.key)
		}
		// Its row: flag, env, key and default, aligned.
		flag, env, dflt := "-", "-", st.def
		if st.flag != "" {
			flag = "--" + st.flag
		}
		if st.env != "" {
			env = st.env
		}
		if dflt == "" {
			dflt = st.display(&def)
		}
		found := false
		for i, line := range lines {
			if f := strings.Fields(line); len(f) >= 4 && f[0] == flag && f[1] == env && f[2] == st.key && strings.Join(f[3:], " ") == dflt {
				found = true
				if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != st.desc {
					t.Errorf("usage: %s not followed by its description", st.key)
				}
			}
		}
		if !found {
			t.Errorf("usage lacks the row %q %q %q %q", flag, env, st.key, dflt)
		}
	}
	for _, want := range []string{"--help", "--version", "--check", "amqp://guest:***@localhost:5672/", "10m0s", "5s", "65536", "16777216", "hyperflow.events", "https://data.plgrid.pl", "us-east-1"} {
		if !strings.Contains(fl.Usage, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	if strings.Contains(fl.Usage, "guest:guest") {
		t.Error("usage shows the default password")
	}
	for _, line := range lines {
		if len(line) > 120 {
			t.Errorf("usage line longer than 120 columns: %q", line)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	s := Default()
	if err := s.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if s.Threads < 1 || s.Threads != max(runtime.NumCPU(), 1) {
		t.Errorf("default threads = %d", s.Threads)
	}
	if s.TmpDir != os.TempDir() {
		t.Errorf("default tmp_dir = %q", s.TmpDir)
	}
}
