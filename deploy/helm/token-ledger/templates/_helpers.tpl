{{/* Names and labels, as `helm create` makes them. */}}
{{- define "token-ledger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "token-ledger.fullname" -}}
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

{{- define "token-ledger.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "token-ledger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "token-ledger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "token-ledger.labels" -}}
helm.sh/chart: {{ include "token-ledger.chart" . }}
{{ include "token-ledger.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: ledger
{{- end }}

{{- define "token-ledger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "token-ledger.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Refuse what cannot work, with the fix in the message (rendered by the Deployment, so by every
install, upgrade, template and lint).
*/}}
{{- define "token-ledger.validate" -}}
{{- if eq .Values.store "embedded" }}
{{- fail "store=embedded is not supported by this chart: the embedded store (PGlite) is one process's files, and the chart runs replicas that share one PostgreSQL. Use store=postgres with secrets.databaseUrl." }}
{{- end }}
{{- if not (has .Values.store (list "postgres" "eventstoredb")) }}
{{- fail (printf "store=%s: expected postgres or eventstoredb" .Values.store) }}
{{- end }}
{{- if not (and .Values.secrets.databaseUrl.name .Values.secrets.databaseUrl.key) }}
{{- fail "secrets.databaseUrl is required: token-ledger keeps its events, read models and keys in PostgreSQL, shared by every replica (the embedded store cannot be used with several replicas). Create a Secret with the connection URL, e.g. `kubectl create secret generic token-ledger-db --from-literal=DATABASE_URL='postgres://user:password@host:5432/ledger'`, then set secrets.databaseUrl.name=token-ledger-db (and secrets.databaseUrl.key if the entry is not DATABASE_URL)." }}
{{- end }}
{{- if and (eq .Values.store "eventstoredb") (not .Values.secrets.eventStoreUrl.name) }}
{{- fail "store=eventstoredb needs secrets.eventStoreUrl.name: a Secret holding EVENTSTORE_URL (esdb://user:password@host:2113)." }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) }}
{{- fail "kafka.sasl.mechanism is set but kafka.sasl.existingSecret is empty: name a Secret with the SASL username and password (kafka.sasl.usernameKey / passwordKey)." }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.brokers) }}
{{- fail "kafka.sasl.mechanism is set but kafka.brokers is empty." }}
{{- end }}
{{- if and .Values.kafka.tls.enabled (not .Values.kafka.brokers) }}
{{- fail "kafka.tls.enabled is true but kafka.brokers is empty." }}
{{- end }}
{{- if ne (empty .Values.kafka.tls.certKey) (empty .Values.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey: set both (mutual TLS) or neither." }}
{{- end }}
{{- if and (or .Values.kafka.tls.certKey .Values.kafka.tls.keyKey) (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey/keyKey need kafka.tls.existingSecret: the Secret holding the client certificate and key." }}
{{- end }}
{{- range $name, $value := .Values.extraEnv }}
{{- if regexMatch "(?i)((^|_)(KEY|SECRET|TOKEN|PASSWORD|PASSWD|KEK|CREDENTIALS?|HEADERS)(_|$)|DATABASE_URL|EVENTSTORE_URL|REDIS_URL|WEBHOOK_URL)" $name }}
{{- fail (printf "extraEnv.%s looks like a secret: the chart never carries secret values. Put it in a Secret and list it in extraSecretEnv ({name: %s, secretName: ..., key: ...})." $name $name) }}
{{- end }}
{{- end }}
{{- range .Values.extraSecretEnv }}
{{- if not (and .name .secretName .key) }}
{{- fail "extraSecretEnv: each entry needs name, secretName and key." }}
{{- end }}
{{- end }}
{{- end }}

{{/* An env entry from a Secret: (list NAME (dict name key)); nothing when the reference has no name. */}}
{{- define "token-ledger.secretEnv" -}}
{{- $var := index . 0 }}
{{- $ref := index . 1 }}
{{- if $ref.name }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name | quote }}
      key: {{ $ref.key | quote }}
{{- end }}
{{- end }}

{{- define "token-ledger.anomalyRules" -}}
{{- dict "rules" (.Values.anomaly.rules | default dict) | toPrettyJson }}
{{- end }}
