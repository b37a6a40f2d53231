package main

import "runtime"

// ullme_last_error() is thread-local: keep main on one OS thread so a status and its message match.
func init() { runtime.LockOSThread() }
