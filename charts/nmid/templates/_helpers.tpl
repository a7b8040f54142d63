{{/* Object name: nameOverride, else the chart name ("nmid"). */}}
{{- define "nmid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Only the user-facing ClusterRoles use it (as aad-pod-identity's fullname). */}}
{{- define "nmid.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 58 | trimSuffix "-" -}}
{{- else if contains (include "nmid.name" .) .Release.Name -}}
{{- .Release.Name | trunc 58 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "nmid.name" .) | trunc 58 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels of every object (and the DaemonSet's selector): the same as deploy/'s, so a
     kubectl-applied nmid upgrades in place. */}}
{{- define "nmid.labels" -}}
app.kubernetes.io/name: {{ include "nmid.name" . }}
{{- end -}}

{{- define "nmid.serviceAccountName" -}}
{{- include "nmid.name" . -}}
{{- end -}}

{{- define "nmid.managed" -}}
{{- if eq (toString .Values.operationMode) "managed" -}}true{{- end -}}
{{- end -}}

{{- define "nmid.image" -}}
{{- $i := .Values.nmid.image -}}
{{- if $i.digest -}}
{{- printf "%s@%s" $i.repository $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository (toString $i.tag) -}}
{{- end -}}
{{- end -}}

{{/* The container's arguments, one per line, unquoted. NMI's flags come first, in the
     aad-pod-identity chart's rules: always rendered, or left out when 0, "" or false. */}}
{{- define "nmid.args" -}}
{{- $n := .Values.nmi -}}
--node=$(NODE_NAME)
--enableScaleFeatures={{ $n.enableScaleFeatures }}
--metadata-header-required={{ $n.metadataHeaderRequired }}
--operation-mode={{ .Values.operationMode }}
{{- if include "nmid.managed" . }}
--forceNamespaced
{{- end }}
--kubelet-config={{ $n.kubeletConfig }}
{{- if $n.logVerbosity }}
-v={{ $n.logVerbosity }}
{{- end }}
{{- if $n.loggingFormat }}
--log-format={{ $n.loggingFormat }}
{{- end }}
{{- if $n.ipTableUpdateTimeIntervalInSeconds }}
--ipt-update-interval-sec={{ $n.ipTableUpdateTimeIntervalInSeconds }}
{{- end }}
{{- if $n.micNamespace }}
--MICNamespace={{ $n.micNamespace }}
{{- end }}
{{- if $n.probePort }}
--http-probe-port={{ $n.probePort }}
{{- end }}
{{- if $n.retryAttemptsForCreated }}
--retry-attempts-for-created={{ $n.retryAttemptsForCreated }}
{{- end }}
{{- if $n.retryAttemptsForAssigned }}
--retry-attempts-for-assigned={{ $n.retryAttemptsForAssigned }}
{{- end }}
{{- if $n.findIdentityRetryIntervalInSeconds }}
--find-identity-retry-interval={{ $n.findIdentityRetryIntervalInSeconds }}
{{- end }}
{{- if $n.prometheusPort }}
--prometheus-port={{ $n.prometheusPort }}
{{- end }}
{{- if $n.blockInstanceMetadata }}
--block-instance-metadata={{ $n.blockInstanceMetadata }}
{{- end }}
{{- if eq (toString $n.allowNetworkPluginKubenet) "true" }}
--allow-network-plugin-kubenet=true
{{- end }}
{{- if eq (toString $n.setRetryAfterHeader) "true" }}
--set-retry-after-header=true
{{- end }}
{{- if eq (toString $n.enableConntrackDeletion) "true" }}
--enable-conntrack-deletion=true
{{- end }}
{{- if .Values.customUserAgent }}
--custom-user-agent={{ .Values.customUserAgent }}
{{- end }}
{{- with .Values.nmid.kubeletURL }}
--kubelet-url={{ . }}
{{- end }}
{{- if .Values.nmid.workloadIdentity.enabled }}
--workload-identity
{{- end }}
{{- if .Values.nmid.nodeCondition.enabled }}
--node-condition
{{- end }}
{{- with .Values.nmid.debugAddress }}
--debug-address={{ . }}
{{- end }}
{{- range .Values.nmid.extraArgs }}
{{ . }}
{{- end }}
{{- end -}}

{{/* Dotted keys of the leaves of a map: (dict "prefix" "mic" "value" .Values.mic). */}}
{{- define "nmid.leafKeys" -}}
{{- $prefix := .prefix -}}
{{- range $k, $v := .value -}}
{{- if and (kindIs "map" $v) (gt (len $v) 0) -}}
{{- include "nmid.leafKeys" (dict "prefix" (printf "%s.%s" $prefix $k) "value" $v) -}}
{{- else -}}
{{- printf "%s.%s\n" $prefix $k -}}
{{- end -}}
{{- end -}}
{{- end -}}
