{{/* The chart's name, or nameOverride. */}}
{{- define "foresight.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release name, with the chart's name unless it already holds it. */}}
{{- define "foresight.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "foresight.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "foresight.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels the Deployment, the Service and the ServiceMonitor select on. */}}
{{- define "foresight.selectorLabels" -}}
app.kubernetes.io/name: {{ include "foresight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the daemon runs as. */}}
{{- define "foresight.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "foresight.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image, tagged with the chart's appVersion unless image.tag is set. */}}
{{- define "foresight.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Foresight's own namespace (its Lease, CapacityBuffers and their PodTemplates, and the Role):
config.backend.kubernetes.namespace, or the release namespace.
*/}}
{{- define "foresight.ownNamespace" -}}
{{- dig "backend" "kubernetes" "namespace" .Release.Namespace .Values.config }}
{{- end }}

{{/* The container port: the port of config.server.listen. */}}
{{- define "foresight.port" -}}
{{- regexFind "[0-9]+$" (dig "server" "listen" "0.0.0.0:9464" .Values.config) | default "9464" }}
{{- end }}

{{/*
Turns every whole number at (dict "parent" MAP "key" KEY), in nested maps and lists too, into
an integer, in place. Helm reads every number in the values as a float and toToml writes a
float as `20.0`, which Foresight's integer keys (and the plugins') refuse; its float keys
accept an integer. Call it on a copy of the values, never on .Values itself.
*/}}
{{- define "foresight.wholeNumbers" -}}
{{- $value := get .parent .key }}
{{- if kindIs "map" $value }}
{{- range $key, $_ := $value }}
{{- include "foresight.wholeNumbers" (dict "parent" $value "key" $key) }}
{{- end }}
{{- else if kindIs "slice" $value }}
{{- $items := list }}
{{- range $item := $value }}
{{- $holder := dict "item" $item }}
{{- include "foresight.wholeNumbers" (dict "parent" $holder "key" "item") }}
{{- $items = append $items $holder.item }}
{{- end }}
{{- $_ := set .parent .key $items }}
{{- else if and (kindIs "float64" $value) (eq $value (floor $value)) }}
{{- $_ := set .parent .key (int64 $value) }}
{{- end }}
{{- end }}

{{/*
foresight.toml: config, with whole numbers as integers and backend.kubernetes.namespace
defaulting to the release namespace, rendered with toToml.
*/}}
{{- define "foresight.toml" -}}
{{- $root := dict "config" (deepCopy .Values.config) }}
{{- include "foresight.wholeNumbers" (dict "parent" $root "key" "config") }}
{{- $backend := get $root.config "backend" }}
{{- if kindIs "map" $backend }}
{{- $kubernetes := get $backend "kubernetes" }}
{{- if and (kindIs "map" $kubernetes) (not (hasKey $kubernetes "namespace")) }}
{{- $_ := set $kubernetes "namespace" .Release.Namespace }}
{{- end }}
{{- end }}
{{- $root.config | toToml }}
{{- end }}
