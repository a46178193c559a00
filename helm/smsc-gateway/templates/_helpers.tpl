{{- define "smsc-gateway.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smsc-gateway.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "smsc-gateway.secretName" -}}
{{- default (printf "%s-secret" (include "smsc-gateway.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{- define "smsc-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "smsc-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The labels that pick one role's pods; called with (dict "root" $ "role" $role). */}}
{{- define "smsc-gateway.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* The image reference; an empty repository is refused with the way to get one. */}}
{{- define "smsc-gateway.image" -}}
{{- $repository := required "image.repository is empty: build and push the image (make image push IMAGE=<registry>/smsc-gateway) and set image.repository to it" .Values.image.repository -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The checksum that restarts pods when their settings change: the ConfigMap, the chart's own
Secret, and the content of every existing Secret the pods read, as the cluster holds it at
install or upgrade time (lookup is empty under `helm template`).
*/}}
{{- define "smsc-gateway.settingsChecksum" -}}
{{- $root := .root -}}
{{- $parts := list (include (print $root.Template.BasePath "/configmap.yaml") $root) -}}
{{- $parts = append $parts (include (print $root.Template.BasePath "/secret.yaml") $root) -}}
{{- range $name := compact (list $root.Values.existingSecret .spec.existingSecret) }}
{{- $secret := lookup "v1" "Secret" $root.Release.Namespace $name -}}
{{- $parts = append $parts (toJson (dig "data" dict $secret)) -}}
{{- end }}
{{- join "\n---\n" $parts | sha256sum -}}
{{- end -}}

{{/*
The pod template of one role, shared by its Deployment or StatefulSet; called with
(dict "root" $ "role" $role "spec" $spec). The role's port goes to the role as the setting
that role reads it from (spec.portSetting), and every probe uses it.
*/}}
{{- define "smsc-gateway.podTemplate" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
{{- $probes := $root.Values.probes -}}
metadata:
  labels:
    {{- include "smsc-gateway.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
  annotations:
    checksum/settings: {{ include "smsc-gateway.settingsChecksum" . }}
    {{- if and $root.Values.scrapeAnnotations (not $root.Values.serviceMonitor.enabled) }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $spec.port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "smsc-gateway.serviceAccountName" $root }}
  # The gateway calls no Kubernetes API: no token in the pods.
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (default $root.Values.nodeSelector $spec.nodeSelector) }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (default $root.Values.tolerations $spec.tolerations) }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (default $root.Values.affinity $spec.affinity) }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with (default $root.Values.topologySpreadConstraints $spec.topologySpreadConstraints) }}
  topologySpreadConstraints:
    {{- range . }}
    - {{- toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (include "smsc-gateway.selector" (dict "root" $root "role" $.role) | fromYaml)))) | nindent 6 }}
    {{- end }}
  {{- end }}
  containers:
    - name: {{ .role }}
      image: {{ include "smsc-gateway.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [{{ .role | quote }}]
      envFrom:
        - configMapRef:
            name: {{ include "smsc-gateway.fullname" $root }}-env
        - secretRef:
            name: {{ include "smsc-gateway.secretName" $root }}
        {{- with $spec.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      env:
        - name: {{ $spec.portSetting }}
          value: {{ $spec.port | quote }}
        {{- with $spec.dataDir }}
        - name: GATEWAY_CORRELATOR_DATA_DIR
          value: {{ . | quote }}
        {{- end }}
        {{- range $key, $value := $spec.env }}
        - name: {{ $key }}
          value: {{ $value | quote }}
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ $spec.port }}
      # /healthz answers while the process runs; /readyz while it can do its work (a bind
      # up, Kafka writable, tables recovered), so traffic and rollouts wait for it.
      startupProbe:
        httpGet: { path: /healthz, port: http }
        timeoutSeconds: {{ $probes.timeoutSeconds }}
        periodSeconds: {{ $probes.startup.periodSeconds }}
        failureThreshold: {{ $probes.startup.failureThreshold }}
      livenessProbe:
        httpGet: { path: /healthz, port: http }
        timeoutSeconds: {{ $probes.timeoutSeconds }}
        periodSeconds: {{ $probes.liveness.periodSeconds }}
        failureThreshold: {{ $probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet: { path: /readyz, port: http }
        timeoutSeconds: {{ $probes.timeoutSeconds }}
        periodSeconds: {{ $probes.readiness.periodSeconds }}
        failureThreshold: {{ $probes.readiness.failureThreshold }}
      resources:
        {{- toYaml $spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $spec.persistence }}
        - name: data
          mountPath: {{ $spec.dataDir }}
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The MCONn of a role's login: its own GATEWAY_SMPP_SYSTEM_TYPE, else the shared one. */}}
{{- define "smsc-gateway.mcon" -}}
{{- $type := default (.root.Values.env.GATEWAY_SMPP_SYSTEM_TYPE | default "") (.spec.env.GATEWAY_SMPP_SYSTEM_TYPE | default "") | upper -}}
{{- $found := regexFind "MCON[1-9]" $type -}}
{{- if $found }}{{ trimPrefix "MCON" $found }}{{ else }}1{{ end -}}
{{- end -}}

{{/* The SMPP connections a role opens on its login: replicas x binds. */}}
{{- define "smsc-gateway.connections" -}}
{{- $binds := default (.root.Values.env.GATEWAY_SMPP_BINDS | default "1") (.spec.env.GATEWAY_SMPP_BINDS | default "") -}}
{{- if eq .role "receiver" -}}
{{- $binds = default (.root.Values.env.GATEWAY_RECEIVER_BINDS | default "1") (.spec.env.GATEWAY_RECEIVER_BINDS | default "") -}}
{{- end -}}
{{- mul (int .spec.replicas) (int $binds) -}}
{{- end -}}

{{/*
Refuses values that deploy binds the provider would knock off each other: one login serves
MCONn connections (1 without MCON), and a bind beyond them closes the oldest. The sender and
a receiver without a login of its own count together.
*/}}
{{- define "smsc-gateway.checkLogins" -}}
{{- $sender := .Values.roles.sender -}}
{{- $receiver := .Values.roles.receiver -}}
{{- $senderArgs := dict "root" . "spec" $sender "role" "sender" -}}
{{- $receiverArgs := dict "root" . "spec" $receiver "role" "receiver" -}}
{{- $senderConnections := int (include "smsc-gateway.connections" $senderArgs) -}}
{{- $receiverConnections := int (include "smsc-gateway.connections" $receiverArgs) -}}
{{- if $sender.enabled -}}
{{- $mcon := int (include "smsc-gateway.mcon" $senderArgs) -}}
{{- if gt $senderConnections $mcon -}}
{{- fail (printf "roles.sender: %d replicas x GATEWAY_SMPP_BINDS make %d SMPP connections on one login, which serves %d (GATEWAY_SMPP_SYSTEM_TYPE MCONn allows n, 1 without): the binds would knock each other off. Lower replicas or binds, or set GATEWAY_SMPP_SYSTEM_TYPE=MCON%d in env." (int $sender.replicas) $senderConnections $mcon (min 9 $senderConnections)) -}}
{{- end -}}
{{- end -}}
{{- if $receiver.enabled -}}
{{- $mcon := int (include "smsc-gateway.mcon" $receiverArgs) -}}
{{- if and $sender.enabled (not $receiver.existingSecret) -}}
{{- if gt (add $senderConnections $receiverConnections) $mcon -}}
{{- fail (printf "roles.receiver is enabled without a login of its own: its %d connections and the sender's %d would share one login that serves %d, and knock each other off. Give the receiver its own login in roles.receiver.existingSecret (a Secret with GATEWAY_SMPP_SYSTEM_ID and GATEWAY_SMPP_PASSWORD), or count both in GATEWAY_SMPP_SYSTEM_TYPE=MCONn." $receiverConnections $senderConnections $mcon) -}}
{{- end -}}
{{- else if gt $receiverConnections $mcon -}}
{{- fail (printf "roles.receiver: %d replicas x GATEWAY_RECEIVER_BINDS make %d SMPP connections on one login, which serves %d (MCONn allows n, 1 without): the binds would knock each other off." (int $receiver.replicas) $receiverConnections $mcon) -}}
{{- end -}}
{{- end -}}
{{- end -}}
