import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { exitedEarly, startProcess, type ManagedProcess } from '../processes.js';
import { waitFor } from '../wait.js';

// Debian's containerd for one real node, with its own root, state, socket and runc root, so it
// never touches (or needs) the system's containerd. The CRI plugin serves the kubelet; its CNI
// config is the node's own; network namespaces live under its state directory.

const run = promisify(execFile);

export interface ContainerdOptions {
  /** Node directory: root/, state/, runc/ and the log go here. */
  dir: string;
  /** Directory for the sockets (short: a unix socket path has at most 107 bytes). */
  socketDir: string;
  sandboxImage: string;
  cniConfDir: string;
}

export interface Containerd {
  process: ManagedProcess;
  socket: string;
  /** Runs `ctr` against this containerd, in the kubelet's namespace. */
  ctr(args: string[]): Promise<string>;
}

export const CNI_BIN_DIR = '/usr/lib/cni';

export function configToml(o: ContainerdOptions, socket: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(join(o.dir, 'root'))}
state = ${q(join(o.dir, 'state'))}
# Snapshotters this machine cannot use would only log errors at start.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = ${q(socket)}
[ttrpc]
  address = ${q(`${socket}.ttrpc`)}
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(o.dir, 'opt'))}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(o.sandboxImage)}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  # Pod sandboxes ask for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which machines like
  # this one (a container without it) refuse with EACCES. Clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${q(join(o.dir, 'runc'))}
        BinaryName = ${q(process.env.FEDGPU_RUNC ?? '/usr/sbin/runc')}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(o.cniConfDir)}
`;
}

export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  for (const binary of ['/usr/bin/containerd', '/usr/bin/ctr', '/usr/bin/containerd-shim-runc-v2', '/usr/sbin/runc']) {
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run 'make deps' (Debian's containerd and runc)`);
  }
  mkdirSync(o.dir, { recursive: true });
  mkdirSync(o.socketDir, { recursive: true });
  const socket = join(o.socketDir, 'containerd.sock');
  const config = join(o.dir, 'containerd.toml');
  writeFileSync(config, configToml(o, socket));
  const proc = startProcess({ name: 'containerd', command: '/usr/bin/containerd', args: ['--config', config], dir: o.dir });
  const ctr = async (args: string[]) => (await run('/usr/bin/ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], { timeout: 60_000 })).stdout;
  await waitFor('containerd to serve', async () => {
    if (!proc.running()) throw exitedEarly(proc);
    if (!existsSync(socket)) return undefined;
    await run('/usr/bin/ctr', ['--address', socket, 'version'], { timeout: 10_000 });
    return true;
  }, { timeoutMs: 30_000 });
  return { process: proc, socket, ctr };
}

/** Imports OCI archives under their names; an image already there is replaced. */
export async function importImages(c: Containerd, images: { name: string; archive: string }[]): Promise<void> {
  for (const image of images) {
    // The archive's index names the image by its tag only; --base-name makes it the full reference.
    const base = image.name.slice(0, image.name.lastIndexOf(':'));
    await c.ctr(['images', 'import', '--base-name', base, image.archive]);
  }
  const listed = await c.ctr(['images', 'ls', '-q']);
  for (const image of images) {
    if (!listed.split('\n').includes(image.name)) throw new Error(`image ${image.name} missing after import from ${image.archive}`);
  }
}
