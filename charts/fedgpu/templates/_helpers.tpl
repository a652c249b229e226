{{/* Standard names and labels. Cluster-scoped objects use the fullname, which carries the
release name, so two releases (a hub and an agent) can share one cluster. */}}

{{- define "fedgpu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Truncated to 52 so that suffixes (-grpc, -metrics, -leader, -settings) stay within 63. */}}
{{- define "fedgpu.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fedgpu.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The component is the mode: hub or agent. */}}
{{- define "fedgpu.component" -}}
{{- if eq .Values.mode "hub" }}hub{{ else }}agent{{ end -}}
{{- end -}}

{{- define "fedgpu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedgpu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ include "fedgpu.component" . }}
{{- end -}}

{{- define "fedgpu.labels" -}}
helm.sh/chart: {{ include "fedgpu.chart" . }}
{{ include "fedgpu.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fedgpu
{{- end -}}

{{- define "fedgpu.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The schema enforces mode; this guards against --disable-openapi-validation style bypasses. */}}
{{- define "fedgpu.mode" -}}
{{- if not (has .Values.mode (list "hub" "provider")) -}}
{{- fail (printf "mode must be \"hub\" or \"provider\", got %q" (toString .Values.mode)) -}}
{{- end -}}
{{- .Values.mode -}}
{{- end -}}

{{/*
Whether the hub settles on chain: "true" or "false". Running without a chain takes the explicit
value hub.chain.enabled=false; with a chain, a missing market address fails here, naming the value.
*/}}
{{- define "fedgpu.hub.chainEnabled" -}}
{{- if eq (toString .Values.hub.chain.enabled) "false" -}}
false
{{- else if not .Values.hub.chain.marketAddress -}}
{{- fail "hub.chain.marketAddress is required in hub mode: the GpuMarket contract address (0x and 40 hex digits). To run the hub without settlement (nothing escrowed or paid), set hub.chain.enabled=false explicitly" -}}
{{- else -}}
true
{{- end -}}
{{- end -}}

{{- define "fedgpu.hub.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "fedgpu.fullname" .)) .Values.hub.tls.secretName -}}
{{- end -}}

{{- define "fedgpu.hub.leaseName" -}}
{{- printf "%s-leader" (include "fedgpu.fullname" .) -}}
{{- end -}}

{{- define "fedgpu.hub.chainSecretName" -}}
{{- printf "%s-chain" (include "fedgpu.fullname" .) -}}
{{- end -}}

{{- define "fedgpu.provider.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "fedgpu.fullname" .)) .Values.provider.tlsSecretName -}}
{{- end -}}

{{- define "fedgpu.provider.walletSecretName" -}}
{{- default (printf "%s-wallet" (include "fedgpu.fullname" .)) .Values.provider.walletSecret.name -}}
{{- end -}}

{{/* PodSecurity "restricted": what both the hub and the agent run under. */}}
{{- define "fedgpu.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fedgpu.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Downward-API env both binaries use: leader identity, own namespace. */}}
{{- define "fedgpu.podEnv" -}}
- name: POD_NAME
  valueFrom: { fieldRef: { fieldPath: metadata.name } }
- name: POD_NAMESPACE
  valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
# The hub publishes this address in its Lease so stand-bys can redirect agents to the leader.
- name: POD_IP
  valueFrom: { fieldRef: { fieldPath: status.podIP } }
{{- end -}}

{{/*
NODE_OPTIONS with a V8 heap cap sized to the container's memory limit: V8 otherwise sizes its heap
from the node's memory and collects lazily far below it, so RSS outgrows a pod limit it never
sees (docs/benchmarks.md). The cap is heapPercentOfLimit % of resources.limits.memory (Ki, Mi, Gi,
or the decimal K, M, G), leaving the rest for code, buffers and native memory. No limit, no cap.
Call with (dict "resources" .Values.hub.resources "percent" .Values.hub.heapPercentOfLimit); an
"extra" string of more flags is appended (NODE_OPTIONS is then set even without a limit).
*/}}
{{- define "fedgpu.heapCapEnv" -}}
{{- $limit := "" -}}
{{- with .resources }}{{ with .limits }}{{ with .memory }}{{ $limit = toString . }}{{ end }}{{ end }}{{ end -}}
{{- $mib := 0.0 -}}
{{- if regexMatch "^[0-9.]+Gi$" $limit }}{{ $mib = mulf (trimSuffix "Gi" $limit | float64) 1024 }}
{{- else if regexMatch "^[0-9.]+Mi$" $limit }}{{ $mib = trimSuffix "Mi" $limit | float64 }}
{{- else if regexMatch "^[0-9.]+Ki$" $limit }}{{ $mib = divf (trimSuffix "Ki" $limit | float64) 1024 }}
{{- else if regexMatch "^[0-9.]+G$" $limit }}{{ $mib = divf (mulf (trimSuffix "G" $limit | float64) 1000000000) 1048576 }}
{{- else if regexMatch "^[0-9.]+M$" $limit }}{{ $mib = divf (mulf (trimSuffix "M" $limit | float64) 1000000) 1048576 }}
{{- else if regexMatch "^[0-9]+$" $limit }}{{ $mib = divf ($limit | float64) 1048576 }}
{{- else if $limit }}{{ fail (printf "resources.limits.memory %q: use Ki, Mi, Gi, K, M, G or bytes to size the heap cap" $limit) }}
{{- end -}}
{{- $flags := list -}}
{{- if gt $mib 0.0 }}{{ $flags = append $flags (printf "--max-old-space-size=%d" (divf (mulf $mib (.percent | default 60 | float64)) 100 | floor | int)) }}{{ end -}}
{{- with .extra }}{{ $flags = append $flags . }}{{ end -}}
{{- if $flags }}
- name: NODE_OPTIONS
  value: {{ join " " $flags | quote }}
{{- end -}}
{{- end -}}

{{/* /healthz and /readyz on the metrics port. */}}
{{- define "fedgpu.probes" -}}
startupProbe:
  httpGet: { path: /healthz, port: metrics }
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: { path: /healthz, port: metrics }
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: metrics }
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}
