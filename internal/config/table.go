package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// setting describes one setting: where it is read from and how it is
// parsed. One table drives the file, the environment, the flags, --help and
// LogValue, so that they cannot drift apart.
type setting struct {
	key   string // YAML key, dotted for the sections: "cloud_storage.region"
	env   string // environment variable, "" for none
	flag  string // flag name without "--", "" for none
	desc  string // one line for --help
	def   string // how --help shows the default, "" to print Default()'s value
	lower bool   // lower-case the value (log level and format)
	pool  bool   // a setting of the worker-pool mode (its own part of --help)
	// field returns a pointer to the setting in s: *string, *Secret, *int,
	// *time.Duration or *bool.
	field func(s *Settings) any
	// onEnv, when set, runs after the setting was taken from the environment.
	onEnv func(s *Settings)
}

// Names of the YAML sections holding nested settings.
const (
	sectionCloud   = "cloud_storage"
	sectionPLGData = "plgdata"
	sectionGridFTP = "gridftp"
)

func isSection(key string) bool {
	return key == sectionCloud || key == sectionPLGData || key == sectionGridFTP
}

// settingTable lists every setting, in the order of --help.
func settingTable() []setting {
	return []setting{
		{
			key: "amqp_url", env: "AMQP_URL", flag: "amqp-url",
			desc:  "RabbitMQ URL (amqp://, amqps://), or a cluster's URLs, comma-separated (prefer the env to the flag)",
			field: func(s *Settings) any { return &s.AMQPURL },
		},
		{
			key: "amqp_url_order", env: "AMQP_URL_ORDER", flag: "amqp-url-order",
			desc:  "how several amqp_url URLs are tried: shuffle (executors spread over the nodes) or ordered; on loss, the next",
			field: func(s *Settings) any { return &s.AMQPURLOrder },
		},
		{
			key: "amqp_tls_ca_file", env: "AMQP_TLS_CA_FILE", flag: "amqp-tls-ca-file", def: "system roots",
			desc:  "amqps: CA certificate (PEM) that signed the broker's certificate (URL query: cacertfile)",
			field: func(s *Settings) any { return &s.AMQPTLSCAFile },
		},
		{
			key: "amqp_tls_cert_file", env: "AMQP_TLS_CERT_FILE", flag: "amqp-tls-cert-file", def: "none",
			desc:  "amqps: client certificate (PEM), for brokers that require one or auth_mechanism=external (URL query: certfile)",
			field: func(s *Settings) any { return &s.AMQPTLSCertFile },
		},
		{
			key: "amqp_tls_key_file", env: "AMQP_TLS_KEY_FILE", flag: "amqp-tls-key-file", def: "none",
			desc:  "amqps: the client certificate's key (PEM) (URL query: keyfile)",
			field: func(s *Settings) any { return &s.AMQPTLSKeyFile },
		},
		{
			key: "amqp_tls_server_name", env: "AMQP_TLS_SERVER_NAME", flag: "amqp-tls-server-name", def: "the URL's host",
			desc:  "amqps: name the broker's certificate must carry (URL query: server_name_indication)",
			field: func(s *Settings) any { return &s.AMQPTLSServerName },
		},
		{
			key: "amqp_queue", env: "AMQP_QUEUE", flag: "queue",
			desc:  "queue the jobs are taken from",
			field: func(s *Settings) any { return &s.Queue },
		},
		{
			key: "storage", env: "STORAGE", flag: "storage",
			desc:  "default storage of a job: cloud (alias s3), nfs, local, plgdata or gridftp",
			field: func(s *Settings) any { return &s.Storage },
		},
		{
			key: "threads", env: "THREADS", flag: "threads",
			desc:  "jobs run at the same time (also the AMQP prefetch)",
			field: func(s *Settings) any { return &s.Threads },
		},
		{
			key: "job_timeout", env: "JOB_TIMEOUT", flag: "job-timeout", def: "0 (none)",
			desc:  "time limit of a job that sets no options.timeout, 0 for none (90s, 10m, or seconds)",
			field: func(s *Settings) any { return &s.JobTimeout },
		},
		{
			key: "shutdown_grace", env: "SHUTDOWN_GRACE", flag: "shutdown-grace",
			desc:  "on SIGTERM, time running jobs get to finish before they are killed",
			field: func(s *Settings) any { return &s.ShutdownGrace },
		},
		{
			key: "heartbeat_interval", env: "HEARTBEAT_INTERVAL", flag: "heartbeat-interval",
			desc:  "time between executor.heartbeat events",
			field: func(s *Settings) any { return &s.HeartbeatInterval },
		},
		{
			key: "output_tail", env: "OUTPUT_TAIL", flag: "output-tail",
			desc:  "bytes of a job's stdout and of its stderr kept for the reply",
			field: func(s *Settings) any { return &s.OutputTail },
		},
		{
			key: "tmp_dir", env: "HYPERFLOW_TMPDIR", flag: "tmp-dir",
			desc:  "directory holding the jobs' temporary work directories",
			field: func(s *Settings) any { return &s.TmpDir },
		},
		{
			key: "log_level", env: "LOG_LEVEL", flag: "log-level", lower: true,
			desc:  "debug, info, warn or error",
			field: func(s *Settings) any { return &s.LogLevel },
		},
		{
			key: "log_format", env: "LOG_FORMAT", flag: "log-format", lower: true,
			desc:  "text or json",
			field: func(s *Settings) any { return &s.LogFormat },
		},
		{
			key: "metrics_addr", env: "METRICS_ADDR", flag: "metrics-addr", def: "off",
			desc:  "host:port of a Prometheus /metrics endpoint, e.g. 127.0.0.1:9100",
			field: func(s *Settings) any { return &s.MetricsAddr },
		},
		{
			key: "events_exchange", env: "EVENTS_EXCHANGE", flag: "events-exchange",
			desc:  "topic exchange the events are published to",
			field: func(s *Settings) any { return &s.EventsExchange },
		},
		{
			key: "events_stream", env: "EVENTS_STREAM", flag: "events-stream", def: "off",
			desc:  "stream queue bound to the events exchange keeping every event (hyperflow-top --history)",
			field: func(s *Settings) any { return &s.EventsStream },
		},
		{
			key: "events_stream_max_age", env: "EVENTS_STREAM_MAX_AGE", flag: "events-stream-max-age", def: "168h (7 days)",
			desc:  "events older than this are dropped from the events stream (x-max-age)",
			field: func(s *Settings) any { return &s.EventsStreamMaxAge },
		},
		{
			key: "events_stream_max_bytes", env: "EVENTS_STREAM_BYTES", flag: "events-stream-bytes", def: "1000000000 (1 GB)",
			desc:  "the events stream keeps at most this many bytes (x-max-length-bytes)",
			field: func(s *Settings) any { return &s.EventsStreamMaxBytes },
		},
		{
			key: "max_message_size", env: "MAX_MESSAGE_SIZE", flag: "max-message-size",
			desc:  "largest job message accepted, in bytes",
			field: func(s *Settings) any { return &s.MaxMessageSize },
		},
		{
			key: "progress_interval", env: "PROGRESS_INTERVAL", flag: "progress-interval",
			desc:  "time between job.progress events of a running job, 0 for none",
			field: func(s *Settings) any { return &s.ProgressInterval },
		},
		{
			key: "events", env: "EVENTS", flag: "events", lower: true,
			desc:  "job events published: all, lifecycle (job.started and job.finished only) or off (none; executor events stay)",
			field: func(s *Settings) any { return &s.Events },
		},
		{
			key: "staging_concurrency", env: "STAGING_CONCURRENCY", flag: "staging-concurrency",
			desc:  "files of one job staged in or out at the same time",
			field: func(s *Settings) any { return &s.StagingConcurrency },
		},
		{
			key: "connect_attempts", env: "CONNECT_ATTEMPTS", flag: "connect-attempts", def: "0 (forever)",
			desc:  "broker connection attempts at start and after a loss before giving up, 0 to keep trying",
			field: func(s *Settings) any { return &s.ConnectAttempts },
		},
		{
			key: "consumer_timeout", env: "CONSUMER_TIMEOUT", flag: "consumer-timeout", def: "0 (broker's, 30m)",
			desc:  "delivery acknowledgement timeout asked of the broker (x-consumer-timeout, RabbitMQ >= 3.12); 0 keeps the broker's",
			field: func(s *Settings) any { return &s.ConsumerTimeout },
		},
		{
			key: "max_deliveries", env: "MAX_DELIVERIES", flag: "max-deliveries",
			desc:  "refuse a job delivered this many times (quorum queues' x-delivery-count), 0 for no limit",
			field: func(s *Settings) any { return &s.MaxDeliveries },
		},
		{
			key: "queue_type", env: "QUEUE_TYPE", flag: "queue-type", def: "none (as the engine declares it)",
			desc:  "opt-in x-queue-type of the job queue (quorum); the engine must declare it the same way",
			field: func(s *Settings) any { return &s.QueueType },
		},
		{
			key: "dead_letter_exchange", env: "DEAD_LETTER_EXCHANGE", flag: "dead-letter-exchange", def: "none",
			desc:  "opt-in x-dead-letter-exchange of the job queue; the engine must declare it the same way",
			field: func(s *Settings) any { return &s.DeadLetterExchange },
		},
		{
			key: "worker_pool", env: "WORKER_POOL", flag: "worker-pool",
			pool:  true,
			desc:  "worker-pool mode: a drop-in for HyperFlow's Node job listener (the settings below, its environment)",
			field: func(s *Settings) any { return &s.WorkerPool },
		},
		{
			key: "queue_name", env: "QUEUE_NAME", flag: "queue-name", def: "none",
			pool:  true,
			desc:  "the task type's queue",
			field: func(s *Settings) any { return &s.PoolQueue },
		},
		{
			key: "rabbit_hostname", env: "RABBIT_HOSTNAME", flag: "rabbit-hostname", def: "none (amqp_url)",
			pool:  true,
			desc:  "broker as user:password@host:port/vhost (amqp:// is prefixed); overrides amqp_url",
			field: func(s *Settings) any { return &s.RabbitHostname },
		},
		{
			key: "redis_url", env: "REDIS_URL", flag: "redis-url",
			pool:  true,
			desc:  "Redis the completions are written to (redis:// or rediss://)",
			field: func(s *Settings) any { return &s.RedisURL },
		},
		{
			key: "rabbit_prefetch_size", env: "RABBIT_PREFETCH_SIZE", flag: "prefetch", def: "0 (threads)",
			pool:  true,
			desc:  "AMQP prefetch; threads defaults to it (1 when neither is set)",
			field: func(s *Settings) any { return &s.Prefetch },
		},
		{
			key: "work_dir", env: "HF_VAR_WORK_DIR", flag: "work-dir", def: "/work_dir or the current dir",
			pool:  true,
			desc:  "the shared working directory tasks run in",
			field: func(s *Settings) any { return &s.WorkDir },
		},
		{
			key: "input_dir", env: "HF_VAR_INPUT_DIR", flag: "input-dir", def: "none",
			pool:  true,
			desc:  "directory of the workflow inputs (args naming one are rewritten)",
			field: func(s *Settings) any { return &s.InputDir },
		},
		{
			key: "output_dir", env: "HF_VAR_OUTPUT_DIR", flag: "output-dir", def: "none",
			pool:  true,
			desc:  "directory of the workflow outputs",
			field: func(s *Settings) any { return &s.OutputDir },
		},
		{
			key: "log_dir", env: "HF_VAR_LOG_DIR", flag: "log-dir", def: "<work_dir>/logs-hf",
			pool:  true,
			desc:  "directory of the tasks' stdout and stderr files",
			field: func(s *Settings) any { return &s.LogDir },
		},
		{
			key: "wait_for_input_files", env: "HF_VAR_WAIT_FOR_INPUT_FILES", flag: "wait-for-input-files",
			pool:  true,
			desc:  "wait until a task's input files exist before running it",
			field: func(s *Settings) any { return &s.WaitForInputFiles },
		},
		{
			key: "file_watch_num_retries", env: "HF_VAR_FILE_WATCH_NUM_RETRIES", flag: "file-watch-num-retries",
			pool:  true,
			desc:  "checks of the input files after the first before the task fails",
			field: func(s *Settings) any { return &s.FileWatchRetries },
		},
		{
			key: "number_of_retries", env: "HF_VAR_NUMBER_OF_RETRIES", flag: "number-of-retries",
			pool:  true,
			desc:  "attempts in all of a command that exits non-zero",
			field: func(s *Settings) any { return &s.TaskAttempts },
		},
		{
			key: "backoff_seed", env: "HF_VAR_BACKOFF_SEED", flag: "backoff-seed",
			pool:  true,
			desc:  "seconds; the pause before attempt n+1 is random below seed*min(n,5)",
			field: func(s *Settings) any { return &s.BackoffSeed },
		},
		{
			key: "node_name", env: "HF_LOG_NODE_NAME", flag: "node-name", def: "none",
			pool:  true,
			desc:  "the node's name, shown as the hostname in events",
			field: func(s *Settings) any { return &s.NodeName },
		},
		{
			key: "pod_name", env: "HF_LOG_POD_NAME", flag: "pod-name", def: "none",
			pool:  true,
			desc:  "the pod's name, logged",
			field: func(s *Settings) any { return &s.PodName },
		},
		{
			key: "cloud_storage.provider", def: "AWS",
			desc:  "accepted and ignored: only S3 is supported",
			field: func(s *Settings) any { return &s.Cloud.Provider },
		},
		{
			key: "cloud_storage.aws_access_key_id", env: "AWS_ACCESS_KEY_ID", def: "AWS SDK chain",
			desc:  "S3 access key; without one the AWS SDK's credential chain is used",
			field: func(s *Settings) any { return &s.Cloud.AccessKeyID },
		},
		{
			key: "cloud_storage.aws_secret_access_key", env: "AWS_SECRET_ACCESS_KEY", def: "AWS SDK chain",
			desc:  "S3 secret key",
			field: func(s *Settings) any { return &s.Cloud.SecretAccessKey },
		},
		{
			key: "cloud_storage.region", env: "AWS_REGION",
			desc:  "S3 region",
			field: func(s *Settings) any { return &s.Cloud.Region },
		},
		{
			key: "cloud_storage.endpoint", env: "AWS_ENDPOINT_URL_S3", def: "AWS",
			desc:  "URL of an S3-compatible server; the env variable also sets path_style",
			field: func(s *Settings) any { return &s.Cloud.Endpoint },
			onEnv: func(s *Settings) { s.Cloud.PathStyle = true },
		},
		{
			key:   "cloud_storage.path_style",
			desc:  "path-style S3 addressing (MinIO, Ceph); true when AWS_ENDPOINT_URL_S3 is set",
			field: func(s *Settings) any { return &s.Cloud.PathStyle },
		},
		{
			key: "plgdata.proxy", env: "X509_USER_PROXY", def: "none",
			desc:  "proxy certificate file for plgdata",
			field: func(s *Settings) any { return &s.PLGData.Proxy },
		},
		{
			key: "plgdata.endpoint", env: "PLGDATA_ENDPOINT",
			desc:  "PL-Grid Data service URL",
			field: func(s *Settings) any { return &s.PLGData.Endpoint },
		},
		{
			key: "gridftp.proxy", env: "X509_USER_PROXY", def: "none",
			desc:  "proxy certificate file for gridftp",
			field: func(s *Settings) any { return &s.GridFTP.Proxy },
		},
	}
}

// set parses raw and stores it in s. The error does not name the setting
// (callers add the file and line, the env variable or the flag) and never
// quotes the value of a secret.
func (st *setting) set(s *Settings, raw string) error {
	switch p := st.field(s).(type) {
	case *string:
		if st.lower {
			raw = strings.ToLower(strings.TrimSpace(raw))
		}
		*p = raw
	case *Secret:
		*p = Secret(raw)
	case *int:
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("cannot parse %q as an integer", raw)
		}
		*p = n
	case *time.Duration:
		d, err := parseDuration(raw)
		if err != nil {
			return err
		}
		*p = d
	case *bool:
		b, err := parseBool(raw)
		if err != nil {
			return err
		}
		*p = b
	default:
		panic(fmt.Sprintf("config: setting %s has unsupported type %T", st.key, p))
	}
	return nil
}

// display returns the setting's value in s as --help and LogValue show it.
func (st *setting) display(s *Settings) string {
	switch p := st.field(s).(type) {
	case *string:
		return *p
	case *Secret:
		return p.String()
	case *int:
		return strconv.Itoa(*p)
	case *time.Duration:
		return p.String()
	case *bool:
		return strconv.FormatBool(*p)
	default:
		panic(fmt.Sprintf("config: setting %s has unsupported type %T", st.key, p))
	}
}

// parseDuration accepts a Go duration ("90s", "1h30m") or a plain number
// of seconds ("600", "1.5").
func parseDuration(raw string) (time.Duration, error) {
	s := strings.TrimSpace(raw)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		secs := f * float64(time.Second)
		if math.IsNaN(f) || math.IsInf(f, 0) || secs >= math.MaxInt64 || secs <= math.MinInt64 {
			return 0, fmt.Errorf("cannot parse %q as a duration: out of range", raw)
		}
		return time.Duration(secs), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q as a duration (like 90s, 10m, or a number of seconds)", raw)
	}
	return d, nil
}

func parseBool(raw string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("cannot parse %q as a boolean (true or false)", raw)
}
