import { bool, obj, type Schema } from './builder.js';

// Consumer access through the hub's tunnel (docs/access.md): logs are always allowed; exec and
// port-forward are the pool owner's choice, and a job may require them.

/** GpuJob spec.access: what the job needs; it is placed only in pools whose owner allows it. */
export const jobAccessSchema: Schema = obj(
  'Consumer access the job needs through the hub (fedgpu exec, fedgpu port-forward). Logs are always ' +
    'available. The job is placed only in a pool whose owner allows every verb asked for here (fedgpu market ' +
    'shows it in ACCESS); checked at placement, and the provider agent enforces its owner\'s choice whatever this says.',
  {
    exec: bool('Place the job only where the owner allows exec into its pods.', { default: false }),
    portForward: bool('Place the job only where the owner allows port-forward to its pods.', { default: false }),
  },
  { tsName: 'JobAccess' },
);

/** GpuProvider status.pools[].access: what the pool's owner allows, as its agent reports it. */
export const poolAccessSchema: Schema = obj(
  'What the owner allows consumers to do with this pool\'s job pods through the hub, besides reading logs ' +
    '(chart values provider.settings.access and accessByProduct). Absent: both allowed.',
  {
    exec: bool('Consumers may exec into job pods.'),
    portForward: bool('Consumers may port-forward to job pods.'),
  },
  { tsName: 'PoolAccess' },
);
