// What kwok serves in the kubelet's place for pods on its nodes, so pods/log, pods/exec and
// pods/portforward work through a real apiserver in the test bed:
//  - logs: every container's log is one file the test writes (and may keep appending to, follow),
//  - exec: the command runs on this machine, in a scratch directory, as this user,
//  - port-forward: every pod port reaches one loopback port, where a test may serve "the pod's" HTTP.
// kwok reads these objects once at start, from the same --config file as the stages.

export interface KwokAccess {
  /** File served as every container's log. */
  logFile: string;
  /** Working directory of exec'd commands. */
  execDir: string;
  /** Loopback port every forwarded pod port reaches. */
  forwardPort: number;
}

export function kwokAccessYaml(access: KwokAccess): string {
  return [
    `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: testbed-logs
spec:
  selector: {}
  logs:
  - logsFile: ${JSON.stringify(access.logFile)}
    follow: true
`,
    `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: testbed-exec
spec:
  selector: {}
  execs:
  - local:
      workDir: ${JSON.stringify(access.execDir)}
`,
    `apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: testbed-port-forward
spec:
  selector: {}
  forwards:
  - target:
      address: 127.0.0.1
      port: ${access.forwardPort}
`,
  ].join('---\n');
}

/** Lines in the CRI log format kwok parses (`<RFC3339Nano> stdout F <text>`), ready to append to logFile. */
export function criLogLines(lines: string[], at: Date = new Date()): string {
  const stamp = at.toISOString().replace('Z', '000000Z');
  return lines.map((line) => `${stamp} stdout F ${line}\n`).join('');
}
