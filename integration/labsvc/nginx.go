package labsvc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FixedModTime is the modification time WriteDeterministicFile gives its
// files, so nginx on every replica sends the same Last-Modified and ETag
// (nginx derives both from mtime and size).
var FixedModTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// NginxConfig writes dir/nginx.conf: a self-contained nginx configuration
// (daemon off, one worker, sendfile, keepalive) serving docroot on listen
// (an nginx listen argument, e.g. "198.18.0.10:8080" or "8080"), with the
// pid file, logs and temporary paths all under dir. Run it as
// "nginx " + strings.Join(NginxArgs(dir), " ").
//
// Responses are deterministic except for the Date header, which nginx
// always sends: two replicas answering across a second boundary differ
// there, which the box's output comparison will notice.
func NginxConfig(dir string, listen string, docroot string) (confPath string, err error) {
	if strings.ContainsAny(listen+dir+docroot, ";{}\n\"'") {
		return "", fmt.Errorf("labsvc: nginx config arguments must not contain ; { } quotes or newlines")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", err
	}
	if docroot, err = filepath.Abs(docroot); err != nil {
		return "", err
	}
	user := ""
	if os.Geteuid() == 0 {
		// The default worker user (nobody) cannot read a 0700 test
		// directory; only meaningful (and allowed) when started as root.
		user = "user root;\n"
	}
	conf := fmt.Sprintf(`# Written by labsvc.NginxConfig; everything lives under %[1]s.
%[4]sdaemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events {
    worker_connections 1024;
}
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/client_body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    server_tokens off;
    server {
        listen %[2]s;
        root %[3]s;
        location / {
        }
    }
}
`, dir, listen, docroot, user)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return "", err
	}
	confPath = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", err
	}
	return confPath, nil
}

// NginxArgs are the nginx command-line arguments for the configuration
// NginxConfig wrote into dir: prefix and startup error log under dir too,
// so nginx touches nothing outside it.
func NginxArgs(dir string) []string {
	return []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")}
}

// WriteDeterministicFile writes Stream(n, seed) to path and sets its
// modification time to FixedModTime.
func WriteDeterministicFile(path string, n int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, bufSize)
	_, err = io.Copy(w, Stream(n, seed))
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(path, FixedModTime, FixedModTime)
	}
	if err != nil {
		return fmt.Errorf("labsvc: writing %s: %w", path, err)
	}
	return nil
}
