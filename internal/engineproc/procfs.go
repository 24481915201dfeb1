package engineproc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's utime and stime: USER_HZ,
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// CPU is the CPU time (user + system) the current child has used so far,
// from /proc/<pid>/stat, in steps of 10 ms.
func (p *Proc) CPU() (time.Duration, error) {
	pid := p.Pid()
	if pid == 0 || !p.Running() {
		return 0, ErrNotRunning
	}
	return ProcessCPU(pid)
}

// RSS is the current child's resident memory (/proc/<pid>/status).
func (p *Proc) RSS() (Memory, error) {
	pid := p.Pid()
	if pid == 0 || !p.Running() {
		return Memory{}, ErrNotRunning
	}
	return ProcessMemory(pid)
}

// ProcessCPU is the user + system CPU time process pid has used.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("engineproc: cpu: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields counted here start after its closing parenthesis, with
	// the state (field 3); utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("engineproc: cpu: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("engineproc: cpu: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("engineproc: cpu: unexpected /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Memory is a process's resident memory, in bytes, from
// /proc/<pid>/status.
type Memory struct {
	RSS  int64 `json:"rss"`       // VmRSS = Anon + File + Shmem
	Anon int64 `json:"rss_anon"`  // RssAnon: heap and stacks
	File int64 `json:"rss_file"`  // RssFile: mapped files (bbolt's mmap) and the binary
	Shm  int64 `json:"rss_shmem"` // RssShmem
}

// ProcessMemory is the resident memory of process pid.
func ProcessMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("engineproc: rss: %w", err)
	}
	var m Memory
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File, "RssShmem:": &m.Shm}
	found := false
	for line := range strings.Lines(string(b)) {
		for name, dst := range fields {
			if rest, ok := strings.CutPrefix(line, name); ok {
				f := strings.Fields(rest) // "123456 kB"
				if len(f) == 2 && f[1] == "kB" {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						*dst = kb << 10
						found = found || name == "VmRSS:"
					}
				}
			}
		}
	}
	if !found {
		return Memory{}, fmt.Errorf("engineproc: rss: no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}
