// Package config holds the executor's settings: their defaults, how they
// are loaded and how they are checked.
//
// # Precedence
//
// Load fills one Settings value from, each source overriding the ones
// before it:
//
//  1. the built-in defaults (Default),
//  2. the YAML settings file, the only positional argument (optional),
//  3. environment variables,
//  4. command-line flags, those given only (pflag's FlagSet.Changed).
//
// The original Ruby executor let the file override the environment; its
// example file read every value from the environment anyway, so usual
// deployments behave the same. An empty value in the file or the
// environment counts as unset: the lower layer stays.
//
// # The settings file
//
// Keys may be written plain (amqp_url:) or Ruby-symbol style (:amqp_url:),
// at every level. Values may hold these template tags, the fixed subset of
// ERB that the original example file uses:
//
//	<%= ENV['NAME'] %>
//	<%= ENV['NAME'] || 'default' %>     (the default also in "double quotes")
//	<%= ENV['NAME'] or "default" %>
//	<%= Executor::cpu_count %>          (runtime.NumCPU)
//
// A default is kept exactly as written between its quotes, spaces included.
// Any other "<% ... %>" is an error naming the file and line; unknown keys
// are warnings (Flags.Warnings); cloud_storage.provider is accepted and
// ignored (only S3 is supported). Syntax and type errors name the file and
// line: "settings.yml:3: threads: cannot parse "abc" as an integer".
// The original example file, testdata/original-settings.yml, loads
// unchanged.
//
// # Settings
//
//	YAML key                             env                    flag                  default
//	amqp_url                             AMQP_URL               --amqp-url            amqp://guest:guest@localhost:5672/, or several URLs, comma-separated
//	amqp_url_order                       AMQP_URL_ORDER         --amqp-url-order      shuffle (or ordered)
//	amqp_queue                           AMQP_QUEUE             --queue               hyperflow.jobs
//	storage                              STORAGE                --storage             cloud (cloud, s3, nfs, local, plgdata, gridftp)
//	threads                              THREADS                --threads             runtime.NumCPU(), at least 1
//	job_timeout                          JOB_TIMEOUT            --job-timeout         0 = no limit
//	shutdown_grace                       SHUTDOWN_GRACE         --shutdown-grace      10m
//	heartbeat_interval                   HEARTBEAT_INTERVAL     --heartbeat-interval  5s
//	output_tail (bytes)                  OUTPUT_TAIL            --output-tail         65536
//	tmp_dir                              HYPERFLOW_TMPDIR       --tmp-dir             os.TempDir()
//	log_level                            LOG_LEVEL              --log-level           info (debug, info, warn, error)
//	log_format                           LOG_FORMAT             --log-format          text (text, json)
//	metrics_addr                         METRICS_ADDR           --metrics-addr        "" = no metrics endpoint
//	events_exchange                      EVENTS_EXCHANGE        --events-exchange     hyperflow.events
//	events_stream                        EVENTS_STREAM          --events-stream       "" = off
//	events_stream_max_age                EVENTS_STREAM_MAX_AGE  --events-stream-max-age  168h (x-max-age 7D)
//	events_stream_max_bytes              EVENTS_STREAM_BYTES    --events-stream-bytes 1000000000
//	max_message_size (bytes)             MAX_MESSAGE_SIZE       --max-message-size    16 MiB
//	cloud_storage.provider               -                      -                     ignored
//	cloud_storage.aws_access_key_id      AWS_ACCESS_KEY_ID      -                     AWS SDK credential chain
//	cloud_storage.aws_secret_access_key  AWS_SECRET_ACCESS_KEY  -                     AWS SDK credential chain
//	cloud_storage.region                 AWS_REGION             -                     us-east-1
//	cloud_storage.endpoint               AWS_ENDPOINT_URL_S3    -                     AWS (the env also sets path_style)
//	cloud_storage.path_style             -                      -                     false
//	plgdata.proxy                        X509_USER_PROXY        -                     none
//	plgdata.endpoint                     PLGDATA_ENDPOINT       -                     https://data.plgrid.pl
//	gridftp.proxy                        X509_USER_PROXY        -                     none
//
// Worker-pool mode (executor/workerpool), under the environment variables
// of HyperFlow's Node job listener; read only when worker_pool is true:
//
//	worker_pool             WORKER_POOL                    --worker-pool             false
//	queue_name              QUEUE_NAME                     --queue-name              required in the mode
//	rabbit_hostname         RABBIT_HOSTNAME                --rabbit-hostname         "" = amqp_url (else amqp:// + it)
//	redis_url               REDIS_URL                      --redis-url               redis://127.0.0.1:6379
//	rabbit_prefetch_size    RABBIT_PREFETCH_SIZE           --prefetch                0 = threads
//	work_dir                HF_VAR_WORK_DIR                --work-dir                /work_dir if it exists, else the current directory
//	input_dir               HF_VAR_INPUT_DIR               --input-dir               none
//	output_dir              HF_VAR_OUTPUT_DIR              --output-dir              none
//	log_dir                 HF_VAR_LOG_DIR                 --log-dir                 <work_dir>/logs-hf
//	wait_for_input_files    HF_VAR_WAIT_FOR_INPUT_FILES    --wait-for-input-files    false
//	file_watch_num_retries  HF_VAR_FILE_WATCH_NUM_RETRIES  --file-watch-num-retries  10
//	number_of_retries       HF_VAR_NUMBER_OF_RETRIES       --number-of-retries       1 (attempts in all)
//	backoff_seed            HF_VAR_BACKOFF_SEED            --backoff-seed            10 (seconds)
//	node_name               HF_LOG_NODE_NAME               --node-name               none
//	pod_name                HF_LOG_POD_NAME                --pod-name                none
//
// In that mode threads, when not set, is the prefetch (1 when that is not
// set either), as the listener runs as many tasks as it prefetches. A
// boolean flag given alone (--worker-pool) means true.
//
// Durations are Go durations ("90s", "1h30m") or plain numbers of seconds.
// Load also recognises --help (-h), --version and --check, and reports them
// in Flags, together with the --help text (Flags.Usage).
//
// # Secrets
//
// The AMQP URL and the S3 secret key are of type Secret, which prints as
// "***" (a URL with only its password masked, see redact.URL) through fmt,
// slog and encoders; Secret.Reveal gives the value. Settings.LogValue logs
// every setting with secrets redacted.
package config
