package storage

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Checker is implemented by backends that can verify their settings
// without a job (hyperflow-amqp-executor --check).
type Checker interface {
	// Check verifies what every job on this backend needs, contacting the
	// service where that is the only way to know.
	Check(ctx context.Context) error
}

var (
	_ Checker = (*Cloud)(nil)
	_ Checker = (*PLGData)(nil)
	_ Checker = (*GridFTP)(nil)
	_ Checker = Local{}
	_ Checker = NFS{}
)

// Check lists the buckets with the configured credentials: the endpoint is
// reachable and the keys are accepted. (Buckets are chosen per job.)
func (c *Cloud) Check(ctx context.Context) error {
	cl, err := c.Client(ctx, c.settings)
	if err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	if _, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		return fmt.Errorf("cloud: list buckets at %s with the configured credentials: %w",
			endpointOrAWS(c.settings.Endpoint), err)
	}
	return nil
}

// Check reads the proxy certificate and makes one request to the endpoint
// (any HTTP answer shows it is reachable).
func (p *PLGData) Check(ctx context.Context) error {
	if _, err := p.readProxy(); err != nil {
		return err
	}
	u, err := url.Parse(p.endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("plgdata.endpoint %s: not an http:// or https:// URL", p.endpoint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.Scheme+"://"+u.Host+"/", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("plgdata: endpoint %s unreachable: %w", u.Host, unwrapURLError(err))
	}
	resp.Body.Close()
	return nil
}

// Check finds globus-url-copy and, when set, the proxy certificate.
func (g *GridFTP) Check(context.Context) error {
	if _, err := exec.LookPath(gridftpTool); err != nil {
		return fmt.Errorf("gridftp: %s is not installed: install the Debian package %s", gridftpTool, gridftpPackage)
	}
	if g.proxy != "" {
		f, err := os.Open(g.proxy)
		if err != nil {
			return fmt.Errorf("gridftp: proxy certificate (gridftp.proxy / X509_USER_PROXY): %w", err)
		}
		f.Close()
	}
	return nil
}

// Check has nothing to verify: the directory is per job.
func (Local) Check(context.Context) error { return nil }

// Check has nothing to verify: the directory is per job.
func (NFS) Check(context.Context) error { return nil }

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err // the URL is already named
	}
	return err
}
