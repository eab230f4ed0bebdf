// Command manyfiles measures staging many files at object-store latency
// (issue 14, docs/benchmarks.md): 500 files of 16 KiB and 50 files of
// 4 MiB, staged out (uploaded) and back in (downloaded) through a proxy
// that delays every request by 20 ms, in front of the private S3 server
// (scripts/s3.sh). Three ways, each in the same run, in alternating order:
//
//   - executor: the executor's cloud backend and storage.Staging with the
//     default staging_concurrency (16);
//   - sequential: the same code with concurrency 1;
//   - s5cmd: `s5cmd cp` with its defaults (256 workers), given with -s5cmd;
//   - executor-N: the executor's code with concurrency N (-also, default
//     64), for information: at 20 ms per request, 16 files at a time cannot
//     go faster than 800 requests/s, s5cmd's 256 workers can.
//
// It prints one JSON document (the seconds of every run, and per set and
// direction the median, spread and MB/s of each way), which bench/run turns
// into table rows with verdicts. Every way starts with a new client (no
// warm connections); every staged-in file is checked against its source.
//
//	scripts/with-servers.sh --s3 -- go run ./bench/manyfiles -s5cmd ~/.cache/hyperflow/bin/s5cmd-v2.3.0
//
// With -proxy-target it is the proxy instead (it runs itself as one).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/procs"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// The environment written by scripts/s3.sh.
const (
	envEndpoint = "HYPERFLOW_TEST_S3_ENDPOINT"
	envAccess   = "HYPERFLOW_TEST_S3_ACCESS_KEY"
	envSecret   = "HYPERFLOW_TEST_S3_SECRET_KEY"
	envRegion   = "HYPERFLOW_TEST_S3_REGION"
)

// fileSet is one workload.
type fileSet struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	Size  int64  `json:"size"`
}

var sets = []fileSet{
	{Name: "small", Files: 500, Size: 16 << 10},
	{Name: "large", Files: 50, Size: 4 << 20},
}

// Ways of staging.
const (
	wayExecutor   = "executor"
	waySequential = "sequential"
	wayS5cmd      = "s5cmd"
	wayAlso       = "executor-" // + the concurrency of -also
)

// Run is one timed transfer.
type Run struct {
	Set       string  `json:"set"`
	Direction string  `json:"direction"` // out (upload) or in (download)
	Way       string  `json:"way"`
	Rep       int     `json:"rep"`
	Seconds   float64 `json:"seconds"`
	Bytes     int64   `json:"bytes"`
	Requests  int64   `json:"requests"` // through the proxy
}

// Figure summarises the runs of one set, direction and way.
type Figure struct {
	Set       string  `json:"set"`
	Direction string  `json:"direction"`
	Way       string  `json:"way"`
	Median    float64 `json:"median_s"`
	Min       float64 `json:"min_s"`
	Max       float64 `json:"max_s"`
	MBps      float64 `json:"mb_s"` // of the median
	Requests  int64   `json:"requests"`
}

// Result is what the command prints.
type Result struct {
	DelayMS     float64   `json:"delay_ms"`
	Concurrency int       `json:"concurrency"`
	Also        int       `json:"also,omitempty"` // the concurrency of the executor-N way
	Reps        int       `json:"reps"`
	Sets        []fileSet `json:"sets"`
	S5cmd       string    `json:"s5cmd,omitempty"` // version, "" when not run
	Runs        []Run     `json:"runs"`
	Figures     []Figure  `json:"figures"`
}

func main() {
	reps := flag.Int("reps", 3, "runs of every way, set and direction (the median counts)")
	delay := flag.Duration("delay", 20*time.Millisecond, "delay the proxy adds to every request")
	conc := flag.Int("concurrency", config.DefaultStagingConcurrency, "staging concurrency of the executor way")
	s5 := flag.String("s5cmd", "", "the s5cmd binary (none: that way is skipped)")
	dir := flag.String("dir", os.TempDir(), "directory for the local files")
	only := flag.String("sets", "small,large", "sets to run")
	also := flag.Int("also", 64, "also run the executor's code with this concurrency (0: not)")
	target := flag.String("proxy-target", "", "internal: run as the proxy in front of this URL")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (not the proxy's) to this file")
	flag.Parse()
	if *cpuprofile != "" && *target == "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *target != "" {
		if err := runProxy(*target, *delay); err != nil {
			fmt.Fprintln(os.Stderr, "proxy:", err)
			os.Exit(1)
		}
		return
	}
	// Only the executor's code runs in this process (s5cmd and the proxy
	// are processes of their own): with the Go threads the executor gives
	// itself at its default threads.
	procs.Set(config.Default().Threads, os.Getenv)
	if err := run(*reps, *delay, *conc, *also, *s5, *dir, strings.Split(*only, ",")); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench/manyfiles:", err)
		os.Exit(1)
	}
}

// ------------------------------------------------------------- proxy ----

// runProxy serves a reverse proxy to target that sleeps delay before
// forwarding each request, and counts the requests (GET /_count).
func runProxy(target string, delay time.Duration) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	rp.FlushInterval = -1
	// The Host header stays the proxy's: the clients signed their requests
	// for it, and the S3 server checks the signature against it.
	var count atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_count" {
			fmt.Fprint(w, count.Load())
			return
		}
		count.Add(1)
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening http://%s\n", ln.Addr())
	os.Stdout.Sync()
	return http.Serve(ln, h)
}

// startProxy runs this program as the proxy and returns its URL.
func startProxy(target string, delay time.Duration) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-proxy-target", target, "-delay", delay.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("proxy did not start: %w", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening ")), stop, nil
}

func proxyCount(proxy string) int64 {
	resp, err := http.Get(proxy + "/_count")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var n int64
	fmt.Fscan(resp.Body, &n)
	return n
}

// -------------------------------------------------------------- bench ----

func settingsFromEnv(endpoint string) (config.Cloud, error) {
	c := config.Cloud{
		Endpoint:        endpoint,
		AccessKeyID:     os.Getenv(envAccess),
		SecretAccessKey: config.Secret(os.Getenv(envSecret)),
		Region:          os.Getenv(envRegion),
		PathStyle:       true,
	}
	if os.Getenv(envEndpoint) == "" || c.AccessKeyID == "" || c.SecretAccessKey == "" || c.Region == "" {
		return c, fmt.Errorf("%s, %s, %s and %s must be set: run under scripts/with-servers.sh --s3",
			envEndpoint, envAccess, envSecret, envRegion)
	}
	return c, nil
}

func run(reps int, delay time.Duration, conc, also int, s5 string, dir string, only []string) error {
	direct := os.Getenv(envEndpoint)
	if _, err := settingsFromEnv(direct); err != nil {
		return err
	}
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	proxy, stopProxy, err := startProxy(direct, delay)
	if err != nil {
		return err
	}
	defer stopProxy()
	settings, _ := settingsFromEnv(proxy)

	work, err := os.MkdirTemp(dir, "hf-bench-manyfiles-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	admin := s3.New(s3.Options{
		Region: settings.Region, BaseEndpoint: aws.String(direct), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(settings.AccessKeyID, settings.SecretAccessKey.Reveal(), ""),
	})
	bucket := fmt.Sprintf("hf-bench-many-%d", time.Now().UnixNano())
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	defer emptyBucket(ctx, admin, bucket)

	res := &Result{DelayMS: float64(delay) / float64(time.Millisecond), Concurrency: conc, Reps: reps}
	ways := []string{wayExecutor, waySequential}
	if os.Getenv("MANYFILES_ONLY_EXECUTOR") != "" {
		ways = ways[:1]
	}
	if also > 0 && also != conc {
		ways = append(ways, wayAlso+strconv.Itoa(also))
		res.Also = also
	}
	if s5 != "" {
		out, err := exec.Command(s5, "version").Output()
		if err != nil {
			return fmt.Errorf("%s version: %w", s5, err)
		}
		res.S5cmd = strings.TrimSpace(string(out))
		ways = append(ways, wayS5cmd)
	}
	for _, set := range sets {
		if !slices.Contains(only, set.Name) {
			continue
		}
		res.Sets = append(res.Sets, set)
		src := filepath.Join(work, "src", set.Name)
		names, err := writeFiles(src, set)
		if err != nil {
			return err
		}
		for rep := range reps {
			order := slices.Clone(ways)
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			for _, way := range order {
				prefix := fmt.Sprintf("%s/%s/", way, set.Name)
				dst := filepath.Join(work, "dst", way, set.Name)
				for _, dirn := range []string{"out", "in"} {
					before := proxyCount(proxy)
					start := time.Now()
					var n int64
					switch way {
					case wayS5cmd:
						n, err = s5cmd(ctx, s5, settings, bucket, prefix, src, dst, dirn)
					default:
						c := conc
						if way == waySequential {
							c = 1
						} else if strings.HasPrefix(way, wayAlso) {
							c = also
						}
						n, err = stage(ctx, settings, bucket, prefix, src, dst, names, dirn, c)
					}
					secs := time.Since(start).Seconds()
					if err != nil {
						return fmt.Errorf("%s %s stage-%s: %w", set.Name, way, dirn, err)
					}
					if want := int64(set.Files) * set.Size; n != want {
						return fmt.Errorf("%s %s stage-%s moved %d bytes, want %d", set.Name, way, dirn, n, want)
					}
					if dirn == "in" {
						if err := sameFiles(src, dst, names); err != nil {
							return fmt.Errorf("%s %s stage-in: %w", set.Name, way, err)
						}
						os.RemoveAll(dst)
					}
					r := Run{Set: set.Name, Direction: dirn, Way: way, Rep: rep, Seconds: secs, Bytes: n,
						Requests: proxyCount(proxy) - before}
					fmt.Fprintf(os.Stderr, "  %-5s %-10s stage-%-3s rep %d: %7.3f s  %7.1f MB/s  %d requests\n",
						set.Name, way, dirn, rep+1, secs, float64(n)/1e6/secs, r.Requests)
					res.Runs = append(res.Runs, r)
				}
			}
		}
	}
	res.summarise()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func (res *Result) summarise() {
	type key struct{ set, dirn, way string }
	groups := map[key][]Run{}
	var keys []key
	for _, r := range res.Runs {
		k := key{r.Set, r.Direction, r.Way}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range keys {
		runs := groups[k]
		secs := make([]float64, len(runs))
		for i, r := range runs {
			secs[i] = r.Seconds
		}
		sort.Float64s(secs)
		med := secs[len(secs)/2]
		if len(secs)%2 == 0 {
			med = (secs[len(secs)/2-1] + secs[len(secs)/2]) / 2
		}
		res.Figures = append(res.Figures, Figure{Set: k.set, Direction: k.dirn, Way: k.way,
			Median: med, Min: secs[0], Max: secs[len(secs)-1],
			MBps: float64(runs[0].Bytes) / 1e6 / med, Requests: runs[len(runs)-1].Requests})
	}
}

// stage moves the set with the executor's code: a new cloud backend (cold
// connections), storage.Staging with concurrency c.
func stage(ctx context.Context, settings config.Cloud, bucket, prefix, src, dst string, names []string, dirn string, c int) (int64, error) {
	b := storage.NewCloud(settings, nil)
	s, err := b.Open(ctx, storage.Options{"bucket": bucket, "prefix": prefix})
	if err != nil {
		return 0, err
	}
	st := storage.Staging{Concurrency: c}
	if dirn == "out" {
		return st.Out(ctx, s, src, names)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	return st.In(ctx, s, dst, names)
}

// s5cmd moves the set with s5cmd cp and its defaults.
func s5cmd(ctx context.Context, bin string, settings config.Cloud, bucket, prefix, src, dst, dirn string) (int64, error) {
	remote := "s3://" + bucket + "/" + prefix
	args := []string{"--endpoint-url", settings.Endpoint, "cp"}
	if dirn == "out" {
		args = append(args, src+"/*", remote)
	} else {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return 0, err
		}
		args = append(args, remote+"*", dst+"/")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+settings.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+settings.SecretAccessKey.Reveal(), "AWS_REGION="+settings.Region)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("s5cmd %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return dirBytes(map[bool]string{true: src, false: dst}[dirn == "out"])
}

func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

func writeFiles(dir string, set fileSet) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	buf := make([]byte, set.Size)
	for i := range set.Files {
		rand.Read(buf)
		name := fmt.Sprintf("f%04d.dat", i)
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

func sameFiles(src, dst string, names []string) error {
	for _, name := range names {
		a, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%s differs from its source", name)
		}
	}
	if entries, err := os.ReadDir(dst); err != nil || len(entries) != len(names) {
		return errors.Join(err, fmt.Errorf("%d files staged in, want %d", len(entries), len(names)))
	}
	return nil
}

func emptyBucket(ctx context.Context, c *s3.Client, bucket string) {
	var token *string
	for {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), ContinuationToken: token})
		if err != nil {
			break
		}
		for _, o := range out.Contents {
			c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		fmt.Fprintf(os.Stderr, "delete bucket %s: %v\n", bucket, err)
	}
}
