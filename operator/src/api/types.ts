// The fedgpu.io/v1alpha1 objects as the operator reads and writes them. Spec and status shapes are
// generated from the CRD schemas (operator/src/gen/api-types.ts), so they match the apiserver.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { GpuJobSpec, GpuJobStatus, GpuProviderSpec, GpuProviderStatus } from '../gen/api-types.js';

export type * from '../gen/api-types.js';

export const GROUP = 'fedgpu.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface GpuJob {
  apiVersion: typeof API_VERSION;
  kind: 'GpuJob';
  metadata: V1ObjectMeta;
  spec: GpuJobSpec;
  status?: GpuJobStatus;
}

export interface GpuProvider {
  apiVersion: typeof API_VERSION;
  kind: 'GpuProvider';
  metadata: V1ObjectMeta;
  spec: GpuProviderSpec;
  status?: GpuProviderStatus;
}

export const GPUJOB_PLURAL = 'gpujobs';
export const GPUPROVIDER_PLURAL = 'gpuproviders';
