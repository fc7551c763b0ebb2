{{/* The image reference. */}}
{{- define "plexus.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The daemon config as JSON: the keys that are not null. */}}
{{- define "plexus.config" -}}
{{- $out := dict -}}
{{- range $k, $v := .Values.config -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toPrettyJson $out -}}
{{- end -}}
