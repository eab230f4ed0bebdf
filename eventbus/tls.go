package eventbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TLSFiles say how to reach an amqps:// broker. A field left empty is taken
// from the URL's query parameters as the RabbitMQ URI specification defines
// them (cacertfile, certfile, keyfile, server_name_indication); a field set
// here wins over the URL. Without a CA file the system's roots are trusted.
// A client certificate (CertFile and KeyFile) logs in with
// auth_mechanism=external when the URL asks for it, and is presented to a
// broker that requires one (verify_peer, fail_if_no_peer_cert) anyway.
type TLSFiles struct {
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// IsZero reports whether no field is set.
func (t TLSFiles) IsZero() bool { return t == TLSFiles{} }

// tlsConfig builds the TLS configuration of an amqps:// URL (nil for
// amqp://). TLS 1.2 is the minimum. Every error names the file at fault.
func (t TLSFiles) tlsConfig(uri amqp.URI) (*tls.Config, error) {
	if uri.Scheme != "amqps" {
		if !t.IsZero() {
			return nil, errors.New("TLS files are set but the URL is not amqps://")
		}
		return nil, nil
	}
	pick := func(set, fromURL string) string {
		if set != "" {
			return set
		}
		return fromURL
	}
	ca := pick(t.CAFile, uri.CACertFile)
	cert := pick(t.CertFile, uri.CertFile)
	key := pick(t.KeyFile, uri.KeyFile)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: pick(t.ServerName, uri.ServerName)}
	if cfg.ServerName == "" {
		cfg.ServerName = uri.Host
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", ca)
		}
		cfg.RootCAs = pool
	}
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s with key %s: %w", cert, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, fmt.Errorf("TLS client certificate: both a certificate and its key are needed (got %q and %q)", cert, key)
	}
	return cfg, nil
}

// explainTLS turns the errors of a TLS connection into sentences that name
// the cause and the setting that fixes it. Others are returned as they are.
func explainTLS(err error, cfg *tls.Config) error {
	if err == nil || cfg == nil {
		return err
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	var closed *amqp.Error // the AMQP client's "connection is not open"
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("TLS: the broker's certificate is not signed by a trusted CA (set amqp_tls_ca_file or cacertfile to the CA that signed it): %w", err)
	case errors.As(err, &host):
		return fmt.Errorf("TLS: the broker's certificate is not valid for %q (set amqp_tls_server_name or server_name_indication): %w", cfg.ServerName, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("TLS: the broker's certificate has expired or is not yet valid: %w", err)
	case errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:"):
		return explainAlert(err, cfg)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.As(err, &closed) && closed.Code == amqp.ChannelError:
		// With TLS 1.3 the broker checks the client certificate after the
		// client's handshake is done, and its alert may be lost when it
		// closes the connection at once.
		if len(cfg.Certificates) == 0 {
			return fmt.Errorf("TLS: the broker closed the connection during the handshake, as a broker that requires a client certificate does (set amqp_tls_cert_file and amqp_tls_key_file, or certfile and keyfile): %w", err)
		}
		if leaf := cfg.Certificates[0].Leaf; leaf != nil && (time.Now().After(leaf.NotAfter) || time.Now().Before(leaf.NotBefore)) {
			return explainAlert(err, cfg) // names the certificate's dates
		}
		return fmt.Errorf("TLS: the broker closed the connection during the handshake: it refused the client certificate, or the port does not speak TLS: %w", err)
	}
	return err
}

// explainAlert explains an alert the broker sent during the handshake,
// with what is known here of the client certificate: the broker's alert
// alone is often a bare "handshake failure".
func explainAlert(err error, cfg *tls.Config) error {
	msg := err.Error()
	var leaf *x509.Certificate
	if len(cfg.Certificates) > 0 {
		leaf = cfg.Certificates[0].Leaf
	}
	now := time.Now()
	switch {
	case leaf != nil && now.After(leaf.NotAfter):
		return fmt.Errorf("TLS: the broker refused the client certificate: it expired on %s: %w", leaf.NotAfter.UTC().Format(time.DateOnly), err)
	case leaf != nil && now.Before(leaf.NotBefore):
		return fmt.Errorf("TLS: the broker refused the client certificate: it is not valid before %s: %w", leaf.NotBefore.UTC().Format(time.DateOnly), err)
	case strings.Contains(msg, "certificate required") && leaf != nil:
		return fmt.Errorf("TLS: the broker refused the client certificate: it asks for one signed by a CA it trusts, and %q (issuer %q) is not: %w", leaf.Subject.CommonName, leaf.Issuer.CommonName, err)
	case strings.Contains(msg, "certificate required"):
		return fmt.Errorf("TLS: the broker requires a client certificate (set amqp_tls_cert_file and amqp_tls_key_file, or certfile and keyfile): %w", err)
	case strings.Contains(msg, "expired"):
		return fmt.Errorf("TLS: the broker refused the client certificate: it has expired: %w", err)
	case strings.Contains(msg, "unknown certificate authority"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "certificate unknown"):
		return fmt.Errorf("TLS: the broker refused the client certificate (not signed by a CA it trusts, or not valid): %w", err)
	case strings.Contains(msg, "protocol version"):
		return fmt.Errorf("TLS: no TLS version in common with the broker (1.2 is the minimum here): %w", err)
	}
	return fmt.Errorf("TLS: the broker refused the handshake: %w", err)
}
