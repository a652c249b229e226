// Names that users, demos and other clusters rely on. Changing one is an API change.

/** Finalizer that guards remote pods and open escrow of a GpuJob. */
export const CLEANUP_FINALIZER = 'fedgpu.io/cleanup';

/** Namespace label binding a namespace's GpuJobs to the consumer wallet their escrows draw on. */
export const CONSUMER_WALLET_LABEL = 'fedgpu.io/consumer-wallet';

/** Pod annotations that drive simulated work on kwok nodes (the test bed and the sandbox). */
export const SIM_RUN_FOR_ANNOTATION = 'fedgpu.io/sim-run-for';
export const SIM_EXIT_CODE_ANNOTATION = 'fedgpu.io/sim-exit-code';
/** Test bed only: kwok leaves the pod Pending with ErrImagePull and records the kubelet's Warning Event. */
export const SIM_IMAGE_PULL_ERROR_ANNOTATION = 'fedgpu.io/sim-image-pull-error';

/** Node label that makes the test bed's kwok stage mark a node NotReady (simulated node loss). */
export const SIM_NODE_DOWN_LABEL = 'fedgpu.io/sim-node-down';

/** The extended resource of NVIDIA's device plugin, and GPU Feature Discovery's labels. */
export const GPU_RESOURCE = 'nvidia.com/gpu';
export const GFD_PRODUCT_LABEL = 'nvidia.com/gpu.product';
export const GFD_MEMORY_LABEL = 'nvidia.com/gpu.memory';
export const GFD_COUNT_LABEL = 'nvidia.com/gpu.count';
export const GFD_CUDA_DRIVER_MAJOR_LABEL = 'nvidia.com/cuda.driver.major';
export const GPU_TAINT_KEY = 'nvidia.com/gpu';

/** Environment variable that tells every attempt of a job where to checkpoint and resume. */
export const CHECKPOINT_DIR_ENV = 'FEDGPU_CHECKPOINT_DIR';

export const JobConditions = {
  Scheduled: 'Scheduled',
  Running: 'Running',
  Finished: 'Finished',
  Settled: 'Settled',
} as const;

export const ProviderConditions = {
  Registered: 'Registered',
  Ready: 'Ready',
  Staked: 'Staked',
  Degraded: 'Degraded',
  /** False while the agent refuses a tenant namespace that does not enforce PodSecurity restricted. */
  TenantIsolation: 'TenantIsolation',
} as const;
