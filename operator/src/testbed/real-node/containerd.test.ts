import { describe, expect, it } from 'vitest';
import { CNI_BIN_DIR, configToml } from './containerd.js';
import { gatewayOf } from './cni.js';

describe('a real node\'s containerd config', () => {
  const opts = { dir: '/runs/42/nodes/n0/containerd', socketDir: '/run/fedgpu-node/abc', sandboxImage: 'fedgpu.local/pause:1.35.0', cniConfDir: '/runs/42/nodes/n0/cni/net.d' };
  const toml = configToml(opts, '/run/fedgpu-node/abc/containerd.sock');

  it('keeps every path under the node\'s folders, never the system containerd\'s', () => {
    const paths = [...toml.matchAll(/"(\/[^"]*)"/g)].map((m) => m[1]!);
    expect(paths.length).toBeGreaterThan(5);
    for (const path of paths) {
      expect([opts.dir, opts.socketDir, '/runs/42/nodes/n0/cni', CNI_BIN_DIR, '/usr/sbin/runc'].some((d) => path === d || path.startsWith(`${d}/`)), path).toBe(true);
    }
    expect(toml).not.toMatch(/\/var\/lib\/containerd|\/run\/containerd/);
  });

  it('uses the imported pause image, cgroupfs, clamped OOM scores and netns under its state', () => {
    expect(toml).toContain('sandbox_image = "fedgpu.local/pause:1.35.0"');
    expect(toml).toContain('SystemdCgroup = false');
    expect(toml).toContain('restrict_oom_score_adj = true');
    expect(toml).toContain('netns_mounts_under_state_dir = true');
    expect(toml).toContain('stream_server_address = "127.0.0.1"');
  });
});

describe('the pod network', () => {
  it('gives the bridge the first address of its /24', () => {
    expect(gatewayOf('10.201.7.0/24')).toBe('10.201.7.1');
  });
});
