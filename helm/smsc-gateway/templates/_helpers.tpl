{{- define "smsc-gateway.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "smsc-gateway.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "smsc-gateway.secretName" -}}
{{- default (printf "%s-secret" (include "smsc-gateway.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The labels that pick one role's pods; called with (dict "root" $ "role" $role). */}}
{{- define "smsc-gateway.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/*
The pod template of one role, shared by its Deployment or StatefulSet; called with
(dict "root" $ "role" $role "spec" $spec). The role's port goes to the role as the setting
that role reads it from (spec.portSetting), and every probe uses it.
*/}}
{{- define "smsc-gateway.podTemplate" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
metadata:
  labels:
    {{- include "smsc-gateway.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
  annotations:
    checksum/env: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if and $root.Values.scrapeAnnotations (not $root.Values.serviceMonitor.enabled) }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $spec.port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .role }}
      image: "{{ $root.Values.image.repository }}:{{ default $root.Chart.AppVersion $root.Values.image.tag }}"
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
      ports:
        - name: http
          containerPort: {{ $spec.port }}
      # /healthz answers while the process runs; /readyz while it can do its work (a bind
      # up, Kafka writable, tables recovered), so traffic and rollouts wait for it.
      startupProbe:
        httpGet: { path: /healthz, port: http }
        periodSeconds: 5
        failureThreshold: 24
      livenessProbe:
        httpGet: { path: /healthz, port: http }
        periodSeconds: 10
      readinessProbe:
        httpGet: { path: /readyz, port: http }
        periodSeconds: 5
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
  volumes:
    - name: tmp
      emptyDir: {}
{{- end -}}
