package main

import (
	"testing"
	"time"
)

func TestIdleReleaser(t *testing.T) {
	var r idleReleaser
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// Idle from the start: nothing was ever carried, nothing to release.
	if r.observe(at(0), 0) || r.observe(at(time.Minute), 0) {
		t.Fatal("released without ever having been busy")
	}
	if r.observe(at(2*time.Minute), 5) {
		t.Fatal("released while busy")
	}
	if r.observe(at(2*time.Minute+time.Second), 0) {
		t.Fatal("released as soon as the table emptied")
	}
	if r.observe(at(2*time.Minute+releaseIdle), 0) {
		t.Fatal("released before releaseIdle without connections")
	}
	if !r.observe(at(2*time.Minute+time.Second+releaseIdle), 0) {
		t.Fatal("not released after releaseIdle without connections")
	}
	if r.observe(at(5*time.Minute), 0) {
		t.Fatal("released twice in one idle spell")
	}
	// A connection in between starts the idle clock over.
	r.observe(at(6*time.Minute), 1)
	r.observe(at(6*time.Minute+time.Second), 0)
	if r.observe(at(6*time.Minute+releaseIdle), 0) {
		t.Fatal("released before releaseIdle of the new idle spell")
	}
	if !r.observe(at(6*time.Minute+time.Second+releaseIdle), 0) {
		t.Fatal("not released after the new idle spell")
	}
}
