package reaper

import "time"

// SetInterval sets how often r reaps without a SIGCHLD (before Run).
func SetInterval(r *Reaper, d time.Duration) { r.interval = d }
