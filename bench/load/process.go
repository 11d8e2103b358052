package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The processes the load program starts and measures: free ports, start and
// stop, and their CPU time from /proc.

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until something accepts connections on addr.
func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// process is a child process whose CPU time can be read from /proc.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProcess(name, logFile string, cmd *exec.Cmd) (*process, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop kills the process and waits for it.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// alive fails if the process has exited.
func (p *process) alive() error {
	select {
	case <-p.done:
		b, _ := os.ReadFile(p.log)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return fmt.Errorf("%s exited (%v); its log ends with:\n%s", p.name, p.cmd.ProcessState, b)
	default:
		return nil
	}
}

// cpu is the user+system CPU time the process has used so far, from
// /proc/<pid>/stat (Linux; zero elsewhere).
func (p *process) cpu() time.Duration {
	if p == nil {
		return 0
	}
	return procCPU(strconv.Itoa(p.cmd.Process.Pid))
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}

// selfCPU is this process's CPU time: the load generator, the in-process
// signing and the null SMTP sink.
func selfCPU() time.Duration { return procCPU("self") }
