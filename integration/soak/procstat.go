package soak

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcStatus is what /proc/PID/status says about a process's footprint.
// Goroutines are not visible from outside a Go process; its OS threads
// (Threads) are the closest external proxy, and the daemon's connection
// table and held bytes come from its snapshot instead.
type ProcStatus struct {
	// Time is when the sample was taken.
	Time time.Time `json:"time"`
	// RSSKiB is VmRSS, the resident set in KiB.
	RSSKiB int64 `json:"rss_kib"`
	// HWMKiB is VmHWM, the peak resident set in KiB.
	HWMKiB int64 `json:"hwm_kib"`
	// Threads is the number of OS threads.
	Threads int `json:"threads"`
	// CPU is user+system CPU time consumed so far.
	CPU time.Duration `json:"cpu_ns"`
	// Load is the machine's 1-minute load average when the sample was
	// taken: the lab shares the machine, and a loaded machine delays the
	// daemon's single loop.
	Load float64 `json:"load1,omitempty"`
}

// loadAvg reads the 1-minute load average (0 if unreadable).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// ReadProcStatus reads /proc/PID/status (and the CPU time from
// /proc/PID/stat).
func ReadProcStatus(pid int) (ProcStatus, error) {
	st := ProcStatus{Time: time.Now()}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			st.RSSKiB = n
			seen++
		case "VmHWM":
			st.HWMKiB = n
		case "Threads":
			st.Threads = int(n)
			seen++
		}
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if seen < 2 {
		return st, fmt.Errorf("soak: /proc/%d/status has no VmRSS or Threads (a zombie?)", pid)
	}
	if cpu, err := readCPU(pid); err == nil {
		st.CPU = cpu
	}
	st.Load = loadAvg()
	return st, nil
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture this firmware runs on.
const clockTicks = 100

// readCPU returns utime+stime of pid.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces: the
	// fields we want follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("soak: odd /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state(0) ppid(1) ... utime is field 14 of stat, index 11 here.
	if len(f) < 13 {
		return 0, fmt.Errorf("soak: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stt, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("soak: bad /proc/%d/stat times", pid)
	}
	return time.Duration(ut+stt) * time.Second / clockTicks, nil
}
