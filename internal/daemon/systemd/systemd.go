// Package systemd speaks systemd's notify protocol for a Type=notify unit:
// READY=1 once the consumer runs, STOPPING=1 when shutdown begins, and
// WATCHDOG=1 pings while the executor is healthy (WatchdogSec=). Outside
// systemd (no NOTIFY_SOCKET) every call does nothing.
package systemd

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready tells systemd the service is up.
func Ready() { daemon.SdNotify(false, daemon.SdNotifyReady) }

// Stopping tells systemd the service is shutting down.
func Stopping() { daemon.SdNotify(false, daemon.SdNotifyStopping) }

// Watchdog pings systemd's watchdog at half its interval while healthy
// returns nil, until ctx is done. Without WatchdogSec it returns at once.
func Watchdog(ctx context.Context, healthy func() error) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() == nil {
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}
}
