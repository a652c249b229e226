// The controller runtime's public surface: import from here rather than from the single files.
export { type Action, CONFLICT_REQUEUE_MS, done, requeueAfter, requeueDelay } from './action.js';
export { type Clock, jittered, sleep, systemClock } from './clock.js';
export {
  type Condition,
  type ConditionStatus,
  type ConditionUpdate,
  conditionTime,
  getCondition,
  isFalse,
  isTrue,
  isUnknown,
  removeCondition,
  setCondition,
} from './conditions.js';
export {
  Controller,
  type ControllerMetrics,
  type ControllerOptions,
  type EventSource,
  type KeyMapper,
  labelKey,
  ownerKeys,
  type ReconcileOutcome,
  type ReconcileSample,
  TerminalError,
} from './controller.js';
export { coreEventSink, EventRecorder, type EventRecorderOptions, type EventSink, type EventType, reference } from './events.js';
export { applyFinalizer, type FinalizerHandlers, type FinalizerStep, finalizerStep, type MetadataPatcher } from './finalizer.js';
export { type DelayFn, Informer, type InformerEvent, type InformerOptions, type InformerSource } from './informer.js';
export {
  customResourceSource,
  nodeSource,
  podSource,
  type SelectorOptions,
  type TypedSourceOptions,
  typedSource,
} from './informer-sources.js';
export {
  type CustomResource,
  CustomObjectClient,
  GPUJOB_RESOURCE,
  GPUPROVIDER_RESOURCE,
  gpuJobClient,
  gpuProviderClient,
  isConflict,
  isNotFound,
  type KubeClients,
  loadKubeConfig,
  makeClients,
  mergePatch,
  objectKey,
  parseKey,
  statusCodeOf,
} from './kube.js';
export { type LeaderElectionOptions, LeaderElector, type LeaseApi, type StopOptions } from './leader-election.js';
export { type Logger, silentLogger, stderrLogger } from './logger.js';
export { StatusWriter, type StatusPatcher, type StatusWriteResult } from './status-writer.js';
export { type BackoffOptions, WorkQueue, type WorkQueueOptions } from './work-queue.js';
