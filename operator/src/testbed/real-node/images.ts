import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../tools.js';

// The images hack/build-images.sh builds from Debian packages (no registry): OCI archives under
// bin/images, tagged with Debian's busybox version. The registry host does not resolve on purpose,
// so a pod that would pull fails at once instead of reaching out.

const imagesDir = join(repoRoot, 'bin', 'images');

export const IMAGE_REGISTRY = 'fedgpu.local';

function imageTag(): string {
  const file = join(imagesDir, 'VERSION');
  if (!existsSync(file)) throw new Error(`test-bed images are not built: run 'make deps' (expected ${file})`);
  return readFileSync(file, 'utf8').trim();
}

/** `fedgpu.local/busybox:<version>`: busybox applets, user 65532, for job containers. */
export function busyboxImage(): string {
  return `${IMAGE_REGISTRY}/busybox:${imageTag()}`;
}

/** `fedgpu.local/pause:<version>`: the pod sandbox image of every real node. */
export function pauseImage(): string {
  return `${IMAGE_REGISTRY}/pause:${imageTag()}`;
}

/** Each image with the archive it is imported from. */
export function imageArchives(): { name: string; archive: string }[] {
  return [
    { name: busyboxImage(), archive: join(imagesDir, 'busybox.tar') },
    { name: pauseImage(), archive: join(imagesDir, 'pause.tar') },
  ];
}
