import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// The pod network of one real node: Debian's bridge plugin on a bridge of its own with a /24 from
// host-local (its lease files under the node's directory), and containerd's loopback. Nothing is
// masqueraded or forwarded: pods reach each other and the host, nothing beyond.

export interface PodNetwork {
  confDir: string;
  bridge: string;
  subnet: string;
}

/** A /24 in 10.201.0.0/16 that no route on this machine uses yet (other test beds run beside us). */
export function freePodSubnet(seed: number): string {
  const routes = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 256; i++) {
    const third = (seed + i) % 256;
    const subnet = `10.201.${third}.0/24`;
    if (!routes.includes(`10.201.${third}.`)) return subnet;
  }
  throw new Error('no free /24 left in 10.201.0.0/16 for a pod network');
}

export function writePodNetwork(dir: string, name: string, bridge: string, subnet: string): PodNetwork {
  const confDir = join(dir, 'net.d');
  mkdirSync(confDir, { recursive: true });
  const conf = {
    cniVersion: '1.0.0',
    name,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(dir, 'ipam') },
      },
    ],
  };
  writeFileSync(join(confDir, '10-fedgpu.conflist'), `${JSON.stringify(conf, null, 2)}\n`);
  return { confDir, bridge, subnet };
}

/** The bridge's own address: the pods' gateway, and the node's IP. */
export function gatewayOf(subnet: string): string {
  return subnet.replace(/\.0\/24$/, '.1');
}

/**
 * Creates the bridge with the gateway address up front (the bridge plugin keeps both), so the
 * kubelet has a node IP before any pod exists: the kubelet refuses a loopback node IP, and this
 * bridge has no uplink, so the address is reachable from this host and its pods only.
 */
export function createBridge(bridge: string, subnet: string): void {
  execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge'], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('ip', ['addr', 'add', `${gatewayOf(subnet)}/24`, 'dev', bridge], { stdio: ['ignore', 'ignore', 'pipe'] });
  execFileSync('ip', ['link', 'set', bridge, 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function deleteBridge(bridge: string): void {
  try {
    execFileSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  } catch {
    // never created, or already gone
  }
}
