// Package e2e runs the components together, end to end, on the private
// servers (see internal/testing/testenv):
//
//	scripts/with-servers.sh --rabbitmq --s3 --gridftp -- go test -count=1 ./internal/e2e/
//
// Every test needs the broker; the other servers are needed only by the
// subtests that use them. Nothing leaves loopback.
//
//   - e2e_test.go: hyperflow-submit (the binary) sends jobs through the
//     broker to a real hyperflow-amqp-executor process, for each storage
//     backend, and the test checks the reply and that the outputs landed in
//     the bucket, directory or GridFTP path with the right bytes. The S3
//     server (cloud) and the GridFTP server (gridftp) are needed by their
//     backend's subtests only. PL-Grid Data has no public server: the test
//     runs the reference server of internal/testing/plgdatatest on
//     127.0.0.1. The executor and hyperflow-submit get a minimal
//     environment (no proxy settings, a private HOME) with every endpoint
//     on 127.0.0.1.
//   - wire_test.go: the executor (in-process) and the metric collector
//     under 500 jobs: every reply, event and collector line checked.
//   - monitor_test.go: the monitor (tui, tui/state) fed from the events of
//     the executor (in-process) running real jobs, a stalled transfer
//     among them.
//
// The in-process executor and the stand-in for the HyperFlow engine come
// from internal/testing/harness, shared with the executor's own tests.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/plgdatatest"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// The binaries under test, built by TestMain.
var executorBin, submitBin, topBin, collectorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hf-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"./cmd/hyperflow-amqp-executor", "./cmd/hyperflow-submit", "./cmd/hyperflow-top", "./cmd/hyperflow-amqp-metric-collector")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	executorBin = filepath.Join(dir, "hyperflow-amqp-executor")
	submitBin = filepath.Join(dir, "hyperflow-submit")
	topBin = filepath.Join(dir, "hyperflow-top")
	collectorBin = filepath.Join(dir, "hyperflow-amqp-metric-collector")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	replyTimeout = 2 * time.Minute // hyperflow-submit --timeout-reply
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

// The job every backend runs: two inputs (one in a subdirectory), two
// outputs (one in a subdirectory). No '$' in the script: the executor
// substitutes $tokens in args.
var (
	inputNames  = []string{"in.txt", "data/words.txt"}
	outputNames = []string{"res/out.dat", "count.txt"}
	jobScript   = "mkdir -p res && tr a-z A-Z < in.txt > res/out.dat && cat data/words.txt >> res/out.dat && wc -c < in.txt > count.txt"
)

// jobData is the content of the inputs and the outputs the job must make.
type jobData struct {
	inputs  map[string][]byte
	outputs map[string][]byte
}

func (d jobData) size(files map[string][]byte) int64 {
	var n int64
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// newJobData makes inputs unique to one job: a text of about 200 KiB (more
// than one buffer of every transfer) and a short one.
func newJobData(t *testing.T) jobData {
	t.Helper()
	raw := make([]byte, 200<<10)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 .,-"
	for i := range raw {
		if i%80 == 79 {
			raw[i] = '\n'
		} else {
			raw[i] = alphabet[int(raw[i])%len(alphabet)]
		}
	}
	in := raw
	words := []byte("tail words, kept lower case: " + hex.EncodeToString(raw[:8]) + "\n")
	out := append(bytes.ToUpper(in), words...)
	return jobData{
		inputs:  map[string][]byte{"in.txt": in, "data/words.txt": words},
		outputs: map[string][]byte{"res/out.dat": out, "count.txt": []byte(strconv.Itoa(len(in)) + "\n")},
	}
}

// --------------------------------------------------------------- backends --

// location is where one job's files live in one backend.
type location struct {
	flags []string                                       // hyperflow-submit job flags selecting it
	seed  func(t *testing.T, name string, data []byte)   // out of band
	fetch func(t *testing.T, name string) ([]byte, bool) // out of band; false if absent
	list  func(t *testing.T) []string                    // every file there, sorted; nil: not checked
	where string                                         // for messages
}

type backend struct {
	name    string
	staging bool // stages files (every backend but local)
	// open makes a new, empty location; it skips or fails the test when
	// the backend's server is missing.
	open func(t *testing.T, e *env) location
}

var backends = []backend{
	{name: "local", open: openLocal},
	{name: "nfs", staging: true, open: openNFS},
	{name: "cloud", staging: true, open: openCloud},
	{name: "plgdata", staging: true, open: openPLGData},
	{name: "gridftp", staging: true, open: openGridFTP},
}

func dirLocation(dir string) location {
	p := func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
	return location{
		where: dir,
		seed: func(t *testing.T, name string, data []byte) {
			t.Helper()
			if err := os.MkdirAll(filepath.Dir(p(name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p(name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		fetch: func(t *testing.T, name string) ([]byte, bool) {
			data, err := os.ReadFile(p(name))
			return data, err == nil
		},
		list: func(t *testing.T) []string { return listDir(t, dir) },
	}
}

// listDir returns the regular files and other non-directories under dir,
// slash-separated, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	slices.Sort(names)
	return names
}

// local runs in place: the work directory is the files' directory, which
// also gets the executor's signals.json; its listing is not checked.
func openLocal(t *testing.T, _ *env) location {
	dir := t.TempDir()
	loc := dirLocation(dir)
	loc.flags = []string{"--storage", "local", "--workdir", dir}
	loc.list = nil
	return loc
}

func openNFS(t *testing.T, _ *env) location {
	dir := t.TempDir()
	loc := dirLocation(dir)
	loc.flags = []string{"--storage", "nfs", "--workdir", dir}
	return loc
}

func openCloud(t *testing.T, e *env) location {
	testenv.Require(t, "HYPERFLOW_TEST_S3_ENDPOINT")
	if e.s3 == nil {
		t.Fatal("HYPERFLOW_TEST_S3_ENDPOINT is set but HYPERFLOW_TEST_S3_ACCESS_KEY, _SECRET_KEY or _REGION is not")
	}
	bucket := newBucket(t, e.s3)
	const prefix = "runs/e2e/"
	ctx := context.Background()
	return location{
		flags: []string{"--storage", "cloud", "--option", "bucket=" + bucket, "--option", "prefix=" + prefix},
		where: "s3://" + bucket + "/" + prefix,
		seed: func(t *testing.T, name string, data []byte) {
			t.Helper()
			if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String(prefix + name), Body: bytes.NewReader(data),
			}); err != nil {
				t.Fatalf("seed s3://%s/%s: %v", bucket, prefix+name, err)
			}
		},
		fetch: func(t *testing.T, name string) ([]byte, bool) {
			t.Helper()
			out, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + name)})
			var nsk *s3types.NoSuchKey
			if errors.As(err, &nsk) {
				return nil, false
			}
			if err != nil {
				t.Fatalf("fetch s3://%s/%s: %v", bucket, prefix+name, err)
			}
			defer out.Body.Close()
			data, err := io.ReadAll(out.Body)
			if err != nil {
				t.Fatalf("fetch s3://%s/%s: %v", bucket, prefix+name, err)
			}
			return data, true
		},
		list: func(t *testing.T) []string {
			t.Helper()
			var names []string
			p := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatalf("list s3://%s: %v", bucket, err)
				}
				for _, o := range page.Contents {
					key := aws.ToString(o.Key)
					if !strings.HasPrefix(key, prefix) {
						names = append(names, "(outside the prefix) "+key)
						continue
					}
					names = append(names, strings.TrimPrefix(key, prefix))
				}
			}
			slices.Sort(names)
			return names
		},
	}
}

// newBucket creates an empty bucket, emptied and removed after the test.
func newBucket(t *testing.T, sdk *s3.Client) string {
	t.Helper()
	bucket := "hfe2e-" + randHex(t, 8)
	ctx := context.Background()
	if _, err := sdk.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		p := s3.NewListObjectsV2Paginator(sdk, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Logf("list %s: %v", bucket, err)
				return
			}
			for _, o := range page.Contents {
				sdk.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			}
		}
		if _, err := sdk.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Logf("delete bucket %s: %v", bucket, err)
		}
	})
	return bucket
}

// plgdata: a prefix of its own on the shared reference server, with a
// leading and a trailing slash (neither may double one in the requests,
// which the server refuses).
func openPLGData(t *testing.T, e *env) location {
	prefix := "/people/plgtest/e2e-" + randHex(t, 6) + "/"
	loc := dirLocation(e.plg.Path(prefix))
	loc.flags = []string{"--storage", "plgdata", "--option", "prefix=" + prefix}
	loc.where = e.plg.URL + " prefix " + prefix
	base := loc.list
	loc.list = func(t *testing.T) []string {
		if _, err := os.Stat(e.plg.Path(prefix)); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return base(t)
	}
	return loc
}

// gridftp: a new directory in the server's root. Run as root, the server
// serves anonymous sessions as an unprivileged user (scripts/gridftp.sh):
// seeded directories are made world-writable so uploads can add files.
func openGridFTP(t *testing.T, _ *env) location {
	testenv.Require(t, "HYPERFLOW_TEST_GRIDFTP_URL")
	root := testenv.Require(t, "HYPERFLOW_TEST_GRIDFTP_ROOT")
	prefix := strings.TrimRight(testenv.Require(t, "HYPERFLOW_TEST_GRIDFTP_PREFIX"), "/")
	dir, err := os.MkdirTemp(root, "e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	loc := dirLocation(dir)
	loc.flags = []string{"--storage", "gridftp", "--option", "prefix=" + prefix + "/" + filepath.Base(dir)}
	loc.where = prefix + "/" + filepath.Base(dir)
	loc.seed = func(t *testing.T, name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		mkdirOpen(t, filepath.Dir(p))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return loc
}

// mkdirOpen creates dir and its missing parents world-writable.
func mkdirOpen(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	mkdirOpen(t, filepath.Dir(dir))
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ------------------------------------------------------------ environment --

// env is one running executor and the servers its jobs use.
type env struct {
	amqpURL string
	queue   string
	tmpDir  string // the executor's tmp_dir: its jobs' work directories
	home    string // HOME of the processes started
	cert    string // the fake proxy certificate's text
	plg     *plgdatatest.Server
	s3      *s3.Client // nil without the S3 server

	cmd  *exec.Cmd
	logs *harness.SyncBuffer
	done chan struct{} // closed when the executor exited
	err  error         // its exit, once done is closed
}

// baseEnv is the environment of every process the test starts: only what
// they need, so no proxy, AWS or AMQP setting of the caller leaks in.
func (e *env) baseEnv() []string {
	vars := []string{"HOME=" + e.home, "LC_ALL=C", "PATH=" + os.Getenv("PATH")}
	if v := os.Getenv("TMPDIR"); v != "" {
		vars = append(vars, "TMPDIR="+v)
	}
	return vars
}

// startExecutorProcess starts the servers of the test (the PL-Grid Data
// reference server) and one executor process (the binary), stopped when
// the test ends. (harness.StartExecutor runs one in-process.)
func startExecutorProcess(t *testing.T) *env {
	t.Helper()
	e := &env{
		amqpURL: testenv.AMQPURL(t),
		queue:   "hyperflow.jobs.e2e-" + randHex(t, 6),
		tmpDir:  t.TempDir(),
		home:    t.TempDir(),
		cert:    plgdatatest.FakeProxy(t),
		logs:    &harness.SyncBuffer{},
		done:    make(chan struct{}),
	}
	e.plg = plgdatatest.New(t, e.cert)
	proxy := plgdatatest.WriteProxy(t, e.cert)

	vars := append(e.baseEnv(),
		"AMQP_URL="+e.amqpURL,
		"AMQP_QUEUE="+e.queue,
		"STORAGE=local",
		"THREADS=2",
		"HYPERFLOW_TMPDIR="+e.tmpDir,
		"CONNECT_ATTEMPTS=5",
		"LOG_LEVEL=debug",
		"X509_USER_PROXY="+proxy,
		"PLGDATA_ENDPOINT="+e.plg.URL,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	if endpoint := os.Getenv("HYPERFLOW_TEST_S3_ENDPOINT"); endpoint != "" {
		key, secret, region := os.Getenv("HYPERFLOW_TEST_S3_ACCESS_KEY"), os.Getenv("HYPERFLOW_TEST_S3_SECRET_KEY"), os.Getenv("HYPERFLOW_TEST_S3_REGION")
		if key != "" && secret != "" && region != "" {
			vars = append(vars,
				"AWS_ACCESS_KEY_ID="+key,
				"AWS_SECRET_ACCESS_KEY="+secret,
				"AWS_REGION="+region,
				"AWS_ENDPOINT_URL_S3="+endpoint,
			)
			e.s3 = s3.New(s3.Options{
				Region:                     region,
				BaseEndpoint:               aws.String(endpoint),
				UsePathStyle:               true,
				Credentials:                credentials.NewStaticCredentialsProvider(key, secret, ""),
				RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
				ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
			})
		}
	}

	e.cmd = exec.Command(executorBin)
	e.cmd.Env = vars
	e.cmd.Stdout = e.logs
	e.cmd.Stderr = e.logs
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start the executor: %v", err)
	}
	go func() {
		e.err = e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		e.stop(t)
		if t.Failed() {
			t.Logf("executor log:\n%s", e.logs.String())
		}
		harness.DeleteQueue(t, e.amqpURL, e.queue, "")
	})

	deadline := time.After(startTimeout)
	for !strings.Contains(e.logs.String(), "executor ready") {
		select {
		case <-e.done:
			t.Fatalf("the executor exited at start: %v", e.err)
		case <-deadline:
			t.Fatalf("the executor was not ready after %v", startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return e
}

// stop sends SIGTERM and expects a clean exit.
func (e *env) stop(t *testing.T) {
	t.Helper()
	select {
	case <-e.done:
		t.Errorf("the executor exited before the end of the test: %v", e.err)
		return
	default:
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		if e.err != nil {
			t.Errorf("executor exit after SIGTERM: %v", e.err)
		}
	case <-time.After(stopTimeout):
		e.cmd.Process.Kill()
		<-e.done
		t.Errorf("the executor did not exit within %v of SIGTERM", stopTimeout)
	}
}

// ----------------------------------------------------------------- submit --

// reply is the executor's reply as hyperflow-submit prints it.
type reply struct {
	ExitStatus *int                       `json:"exit_status"`
	Stdout     string                     `json:"stdout"`
	Stderr     string                     `json:"stderr"`
	Exceptions []string                   `json:"exceptions"`
	Metrics    map[string]json.RawMessage `json:"metrics"`
}

// metric returns an integer metric, failing the test unless it is a JSON
// integer.
func (r reply) metric(t *testing.T, key string) int64 {
	t.Helper()
	raw, ok := r.Metrics[key]
	if !ok {
		t.Fatalf("metrics lack %s: %v", key, r.Metrics)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		t.Fatalf("metrics.%s = %s: not an integer", key, raw)
	}
	return n
}

type submitResult struct {
	code           int
	reply          reply
	stdout, stderr string
}

// submit runs the hyperflow-submit binary with the job flags and command
// and returns its exit code and the reply it printed.
func (e *env) submit(t *testing.T, jobFlags []string, command ...string) submitResult {
	t.Helper()
	args := append([]string{"--amqp-url", e.amqpURL, "--queue", e.queue, "--timeout-reply", replyTimeout.String()}, jobFlags...)
	args = append(append(args, "--"), command...)
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, submitBin, args...)
	cmd.Env = e.baseEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run hyperflow-submit: %v", err)
	}
	res := submitResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("hyperflow-submit %s: exit %d\nstderr: %s", strings.Join(jobFlags, " "), res.code, res.stderr)
	if err := json.Unmarshal(stdout.Bytes(), &res.reply); err != nil || res.reply.ExitStatus == nil {
		t.Fatalf("hyperflow-submit printed no reply (%v), exit %d\nstdout: %s\nstderr: %s", err, res.code, res.stdout, res.stderr)
	}
	return res
}

// ------------------------------------------------------------------ tests --

// TestStorageBackends runs, for every backend, a job that reads two inputs
// and writes two outputs (one in a subdirectory), and, for the backends
// that stage, a job whose input is missing. All jobs go to one executor
// with two threads, at the same time.
func TestStorageBackends(t *testing.T) {
	e := startExecutorProcess(t)

	t.Run("group", func(t *testing.T) {
		for _, b := range backends {
			t.Run(b.name, func(t *testing.T) {
				t.Parallel()
				t.Run("job", func(t *testing.T) {
					t.Parallel()
					testJob(t, e, b)
				})
				if b.staging {
					t.Run("missing-input", func(t *testing.T) {
						t.Parallel()
						testMissingInput(t, e, b)
					})
				}
			})
		}
	})

	// Every work directory is gone (only the executor's pid file is left).
	if t.Failed() {
		return
	}
	for _, name := range listDir(t, e.tmpDir) {
		if !strings.HasPrefix(name, "hyperflow-executor-") {
			t.Errorf("left in the executor's tmp_dir %s: %s", e.tmpDir, name)
		}
	}
	// The proxy certificate never shows in the logs.
	logs := e.logs.String()
	for _, line := range strings.Split(e.cert, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(logs, line) {
			t.Errorf("the executor log shows the proxy certificate (%q)", line)
			break
		}
	}
}

func testJob(t *testing.T, e *env, b backend) {
	loc := b.open(t, e)
	data := newJobData(t)
	for _, name := range inputNames {
		loc.seed(t, name, data.inputs[name])
	}
	var flags []string
	for _, name := range inputNames {
		flags = append(flags, "--input", name)
	}
	for _, name := range outputNames {
		flags = append(flags, "--output", name)
	}
	res := e.submit(t, append(flags, loc.flags...), "/bin/sh", "-c", jobScript)

	if res.code != 0 || *res.reply.ExitStatus != 0 {
		t.Fatalf("exit %d, exit_status %d, exceptions %q\nreply stderr: %s", res.code, *res.reply.ExitStatus, res.reply.Exceptions, res.reply.Stderr)
	}
	if len(res.reply.Exceptions) != 0 {
		t.Errorf("exceptions of a job that succeeded: %q", res.reply.Exceptions)
	}
	if got, want := res.reply.metric(t, "input_size"), data.size(data.inputs); got != want {
		t.Errorf("metrics.input_size = %d, want %d", got, want)
	}
	if got, want := res.reply.metric(t, "output_size"), data.size(data.outputs); got != want {
		t.Errorf("metrics.output_size = %d, want %d", got, want)
	}
	for _, name := range outputNames {
		got, ok := loc.fetch(t, name)
		want := data.outputs[name]
		switch {
		case !ok:
			t.Errorf("output %s did not land in %s", name, loc.where)
		case !bytes.Equal(got, want):
			t.Errorf("output %s in %s: %d bytes, want %d (%s)", name, loc.where, len(got), len(want), firstDiff(got, want))
		}
	}
	// Inputs are left as they were, and nothing else (temporary or
	// partial files, signals.json) was written there.
	for _, name := range inputNames {
		if got, ok := loc.fetch(t, name); !ok || !bytes.Equal(got, data.inputs[name]) {
			t.Errorf("input %s in %s changed or is gone", name, loc.where)
		}
	}
	if loc.list != nil {
		want := append(append([]string{}, inputNames...), outputNames...)
		slices.Sort(want)
		if got := loc.list(t); !slices.Equal(got, want) {
			t.Errorf("files in %s: %q, want %q", loc.where, got, want)
		}
	}
}

// testMissingInput: an input that is not there fails the job with -2
// (hyperflow-submit exits 125) before the command runs, naming the file;
// nothing is staged out.
func testMissingInput(t *testing.T, e *env, b backend) {
	loc := b.open(t, e)
	data := newJobData(t)
	loc.seed(t, "in.txt", data.inputs["in.txt"])
	const missing = "data/missing-input.txt"
	flags := []string{"--input", "in.txt", "--input", missing, "--output", "res/out.dat"}
	res := e.submit(t, append(flags, loc.flags...), "/bin/sh", "-c", "mkdir -p res && cat in.txt > res/out.dat")

	if res.code != 125 || *res.reply.ExitStatus != -2 {
		t.Errorf("exit %d, exit_status %d: want 125 and -2", res.code, *res.reply.ExitStatus)
	}
	named := slices.ContainsFunc(res.reply.Exceptions, func(s string) bool { return strings.Contains(s, missing) })
	if !named {
		t.Errorf("no exception names %s: %q", missing, res.reply.Exceptions)
	}
	if !strings.Contains(res.stderr, missing) {
		t.Errorf("hyperflow-submit's stderr does not name %s:\n%s", missing, res.stderr)
	}
	if _, ok := loc.fetch(t, "res/out.dat"); ok {
		t.Errorf("res/out.dat was staged out to %s by a job whose stage-in failed", loc.where)
	}
	if loc.list != nil {
		if got := loc.list(t); !slices.Equal(got, []string{"in.txt"}) {
			t.Errorf("files in %s: %q, want only the seeded in.txt", loc.where, got)
		}
	}
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	return "one is a prefix of the other"
}
