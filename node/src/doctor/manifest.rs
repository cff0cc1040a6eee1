//! The parts of a Kubernetes manifest the rules read: Deployments and StatefulSets (at
//! the top level or in a `kind: List`), their pod template's grace period, and each
//! container's args, env, ports, probes and CPU limit, every one with its line.
//!
//! Other kinds are skipped, unknown fields are ignored, and a field the doctor reads
//! but of the wrong type (or out of the API's range) is an [`InputError`] naming its
//! path and line: the API server would refuse that manifest too.

use super::yaml::{Entry, Node, Value};

/// The kinds whose pod template the doctor checks.
pub const WORKLOAD_KINDS: [&str; 2] = ["Deployment", "StatefulSet"];

/// A value and the line of its field.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// 1-based line of the field (its key, or the list item).
    pub line: usize,
}

/// A manifest the doctor cannot read: where and why.
#[derive(Clone, Debug, PartialEq)]
pub struct InputError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

/// A Deployment or StatefulSet.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// The line of its `kind`.
    pub line: usize,
    /// `spec.replicas` (default 1).
    pub replicas: i64,
    /// `spec.template.spec`.
    pub pod: Pod,
}

/// A pod template's spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    /// The line of `spec.template.spec`.
    pub line: usize,
    /// `terminationGracePeriodSeconds` (default 30 when absent).
    pub grace: Option<Spanned<i64>>,
    /// Pod-level `resources.limits.cpu` (Kubernetes 1.32+ pod resources).
    pub cpu_limit: Option<Spanned<String>>,
    /// `containers`.
    pub containers: Vec<Container>,
}

/// One container.
#[derive(Clone, Debug, PartialEq)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// The line of its `name` (the list item's line when it has none).
    pub line: usize,
    /// `image`.
    pub image: Option<String>,
    /// `command`, each item with its line (overrides the image's entrypoint).
    pub command: Option<Vec<Spanned<String>>>,
    /// `args`, each item with its line.
    pub args: Vec<Spanned<String>>,
    /// The line of the `args` key.
    pub args_line: Option<usize>,
    /// `env`, in order (a name may repeat: the last wins).
    pub env: Vec<EnvVar>,
    /// `ports`: name and containerPort.
    pub ports: Vec<(Option<String>, i64)>,
    /// `startupProbe`.
    pub startup: Option<Probe>,
    /// `livenessProbe`.
    pub liveness: Option<Probe>,
    /// `readinessProbe`.
    pub readiness: Option<Probe>,
    /// `resources.limits.cpu`, as written.
    pub cpu_limit: Option<Spanned<String>>,
    /// Seconds a `lifecycle.preStop` hook waits (`sleep.seconds`, or an exec of
    /// `sleep N`), which the grace period must cover too.
    pub pre_stop_sleep: Option<Spanned<i64>>,
}

/// One `env` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvVar {
    /// `name`.
    pub name: String,
    /// The line of the entry.
    pub line: usize,
    /// Where its value comes from.
    pub source: EnvSource,
}

/// Where an `env` entry's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvSource {
    /// `value`, as written (`$(VAR)` not yet expanded; absent is the empty string).
    Value(String),
    /// `valueFrom.fieldRef.fieldPath` (the downward API: `status.podIP`,
    /// `metadata.name`): the value is the pod's, its shape known.
    Field(String),
    /// Another `valueFrom` (a ConfigMap, a Secret, a resource), whose value the
    /// manifest does not hold: what it is, for messages.
    Elsewhere(&'static str),
}

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// `startupProbe`.
    Startup,
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
}

impl ProbeKind {
    /// The field name.
    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        }
    }
}

/// One probe, its timings as written (the defaults are applied by the getters).
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Which one.
    pub kind: ProbeKind,
    /// The line of its key (`livenessProbe:`).
    pub line: usize,
    /// What it runs.
    pub action: Action,
    /// `periodSeconds`.
    pub period: Option<Spanned<i64>>,
    /// `timeoutSeconds`.
    pub timeout: Option<Spanned<i64>>,
    /// `failureThreshold`.
    pub failure: Option<Spanned<i64>>,
    /// `initialDelaySeconds`.
    pub initial_delay: Option<Spanned<i64>>,
}

impl Probe {
    /// `periodSeconds`, default 10.
    pub fn period_s(&self) -> i64 {
        self.period.as_ref().map_or(10, |s| s.value)
    }
    /// `timeoutSeconds`, default 1.
    pub fn timeout_s(&self) -> i64 {
        self.timeout.as_ref().map_or(1, |s| s.value)
    }
    /// `failureThreshold`, default 3.
    pub fn failure_threshold(&self) -> i64 {
        self.failure.as_ref().map_or(3, |s| s.value)
    }
    /// `initialDelaySeconds`, default 0.
    pub fn initial_delay_s(&self) -> i64 {
        self.initial_delay.as_ref().map_or(0, |s| s.value)
    }
    /// The HTTP GET, when that is what it runs.
    pub fn http(&self) -> Option<&HttpGet> {
        match &self.action {
            Action::Http(h) => Some(h),
            _ => None,
        }
    }
}

/// What a probe runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `httpGet`.
    Http(HttpGet),
    /// `tcpSocket`, `exec` or `grpc` (the doctor reads only their timings).
    Other(&'static str),
    /// No handler at all (the API server refuses such a probe).
    Missing,
}

/// `httpGet`.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpGet {
    /// The line of `httpGet`.
    pub line: usize,
    /// `path` (default `/`).
    pub path: Option<Spanned<String>>,
    /// `port`: a number or a container port's name.
    pub port: Spanned<PortRef>,
    /// `scheme` (default HTTP).
    pub scheme: Option<Spanned<String>>,
    /// `host` (default: the pod IP).
    pub host: Option<Spanned<String>>,
    /// `httpHeaders`' names, each with its line.
    pub headers: Vec<Spanned<String>>,
}

impl HttpGet {
    /// The path as the kubelet requests it.
    pub fn path(&self) -> &str {
        self.path.as_ref().map_or("/", |p| p.value.as_str())
    }
    /// The line to point at for the path.
    pub fn path_line(&self) -> usize {
        self.path.as_ref().map_or(self.line, |p| p.line)
    }
}

/// A probe's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    /// A number.
    Number(i64),
    /// A `containerPort`'s name.
    Name(String),
}

/// Where a field is, for messages: the workload and the path inside it.
#[derive(Clone)]
struct At<'a> {
    what: &'a str,
    path: String,
}

impl At<'_> {
    fn field(&self, key: &str) -> Self {
        At {
            what: self.what,
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }
    fn item(&self, i: usize) -> Self {
        At {
            what: self.what,
            path: format!("{}[{i}]", self.path),
        }
    }
    fn err(&self, line: usize, why: impl std::fmt::Display) -> InputError {
        InputError {
            line,
            message: format!("{}: {}: {why}", self.what, self.path),
        }
    }
}

/// A field that must be a mapping when present (null counts as absent).
fn map_field<'n>(
    parent: &'n Node,
    key: &str,
    at: &At<'_>,
) -> Result<Option<&'n Entry>, InputError> {
    match parent.get(key) {
        Some(e) if matches!(e.value.value, Value::Map(_)) => Ok(Some(e)),
        Some(e) if e.value.value == Value::Null => Ok(None),
        Some(e) => Err(at.field(key).err(
            e.key_line,
            format!("expected a mapping, found {}", e.value.kind()),
        )),
        None => Ok(None),
    }
}

fn seq_field<'n>(
    parent: &'n Node,
    key: &str,
    at: &At<'_>,
) -> Result<Option<(usize, &'n [Node])>, InputError> {
    match parent.get(key) {
        Some(e) => match &e.value.value {
            Value::Seq(items) => Ok(Some((e.key_line, items))),
            Value::Null => Ok(None),
            _ => Err(at.field(key).err(
                e.key_line,
                format!("expected a list, found {}", e.value.kind()),
            )),
        },
        None => Ok(None),
    }
}

fn str_field(parent: &Node, key: &str, at: &At<'_>) -> Result<Option<Spanned<String>>, InputError> {
    match parent.get(key) {
        Some(e) => match &e.value.value {
            Value::Str(s) => Ok(Some(Spanned {
                value: s.clone(),
                line: e.key_line,
            })),
            Value::Null => Ok(None),
            _ => Err(at.field(key).err(
                e.key_line,
                format!("expected a string, found {}", e.value.kind()),
            )),
        },
        None => Ok(None),
    }
}

/// The API's int32 fields (probe timings, `replicas`): the API server refuses more.
const INT32: i64 = i32::MAX as i64;

/// An integer field within the API's range `min..=max` (int32 fields end at [`INT32`];
/// int64 ones, such as `terminationGracePeriodSeconds`, at `i64::MAX`), so that the
/// rules' arithmetic on it stays in range.
fn int_field(
    parent: &Node,
    key: &str,
    min: i64,
    max: i64,
    at: &At<'_>,
) -> Result<Option<Spanned<i64>>, InputError> {
    match parent.get(key) {
        Some(e) => match &e.value.value {
            Value::Int(i) if (min..=max).contains(i) => Ok(Some(Spanned {
                value: *i,
                line: e.key_line,
            })),
            Value::Int(i) if *i < min => Err(at.field(key).err(
                e.key_line,
                format!("{i} is below the API's minimum of {min}"),
            )),
            Value::Int(i) => Err(at.field(key).err(
                e.key_line,
                format!("{i} is above the API's maximum of {max}"),
            )),
            Value::Null => Ok(None),
            _ => Err(at.field(key).err(
                e.key_line,
                format!("expected an integer, found {}", e.value.kind()),
            )),
        },
        None => Ok(None),
    }
}

/// A resource quantity (`500m`, `1`, `0.5`) as text.
fn quantity_field(
    parent: &Node,
    key: &str,
    at: &At<'_>,
) -> Result<Option<Spanned<String>>, InputError> {
    match parent.get(key) {
        Some(e) => {
            let text = match &e.value.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Null => return Ok(None),
                _ => {
                    return Err(at.field(key).err(
                        e.key_line,
                        format!("expected a quantity, found {}", e.value.kind()),
                    ));
                }
            };
            Ok(Some(Spanned {
                value: text,
                line: e.key_line,
            }))
        }
        None => Ok(None),
    }
}

fn string_list(items: &[Node], at: &At<'_>) -> Result<Vec<Spanned<String>>, InputError> {
    items
        .iter()
        .enumerate()
        .map(|(i, n)| match &n.value {
            Value::Str(s) => Ok(Spanned {
                value: s.clone(),
                line: n.line,
            }),
            // Kubernetes refuses a number here; quote it.
            _ => Err(at
                .item(i)
                .err(n.line, format!("expected a string, found {}", n.kind()))),
        })
        .collect()
}

/// `resources.limits.cpu` of a node holding `resources`.
fn cpu_limit(parent: &Node, at: &At<'_>) -> Result<Option<Spanned<String>>, InputError> {
    let at = at.field("resources");
    let Some(res) = map_field(parent, "resources", &at.clone())? else {
        return Ok(None);
    };
    let lat = at.field("limits");
    let Some(limits) = map_field(&res.value, "limits", &at)? else {
        return Ok(None);
    };
    quantity_field(&limits.value, "cpu", &lat)
}

/// Reads every Deployment and StatefulSet of the documents, in file order.
pub fn workloads(docs: &[Node]) -> Result<Vec<Workload>, InputError> {
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        match &doc.value {
            Value::Null => continue,
            Value::Map(_) => {}
            _ => {
                return Err(InputError {
                    line: doc.line,
                    message: format!(
                        "document {}: expected a Kubernetes object (a mapping), found {}",
                        i + 1,
                        doc.kind()
                    ),
                });
            }
        }
        let kind = object_kind(doc, &format!("document {}", i + 1))?;
        if kind.value == "List" {
            // `kubectl get -o yaml` writes a List; its items are objects (one level).
            let at = At {
                what: "List",
                path: String::new(),
            };
            if let Some((_, items)) = seq_field(doc, "items", &at)? {
                for (j, item) in items.iter().enumerate() {
                    let k = object_kind(item, &format!("List items[{j}]"))?;
                    if let Some(w) = workload(item, &k)? {
                        out.push(w);
                    }
                }
            }
        } else if let Some(w) = workload(doc, &kind)? {
            out.push(w);
        }
    }
    Ok(out)
}

fn object_kind(doc: &Node, what: &str) -> Result<Spanned<String>, InputError> {
    let at = At {
        what,
        path: String::new(),
    };
    if !matches!(doc.value, Value::Map(_)) {
        return Err(at.err(
            doc.line,
            format!("expected a Kubernetes object, found {}", doc.kind()),
        ));
    }
    str_field(doc, "kind", &at)?.ok_or_else(|| InputError {
        line: doc.line,
        message: format!("{what}: kind: missing (every Kubernetes object has one)"),
    })
}

fn workload(doc: &Node, kind: &Spanned<String>) -> Result<Option<Workload>, InputError> {
    if !WORKLOAD_KINDS.contains(&kind.value.as_str()) {
        return Ok(None);
    }
    let what0 = kind.value.clone();
    let at0 = At {
        what: &what0,
        path: String::new(),
    };
    let name = map_field(doc, "metadata", &at0)?
        .map(|m| str_field(&m.value, "name", &at0.field("metadata")))
        .transpose()?
        .flatten()
        .ok_or_else(|| at0.field("metadata.name").err(kind.line, "missing"))?;
    let what = format!("{}/{}", kind.value, name.value);
    let at = At {
        what: &what,
        path: String::new(),
    };
    let missing = |path: &str, line: usize| at.field(path).err(line, "missing");
    let spec = map_field(doc, "spec", &at)?.ok_or_else(|| missing("spec", kind.line))?;
    let replicas =
        int_field(&spec.value, "replicas", 0, INT32, &at.field("spec"))?.map_or(1, |r| r.value);
    let tat = at.field("spec.template");
    let template = map_field(&spec.value, "template", &at.field("spec"))?
        .ok_or_else(|| missing("spec.template", spec.key_line))?;
    let pod = map_field(&template.value, "spec", &tat)?
        .ok_or_else(|| missing("spec.template.spec", template.key_line))?;
    let pat = at.field("spec.template.spec");
    let cat = pat.field("containers");
    let (containers_line, items) = seq_field(&pod.value, "containers", &pat)?
        .ok_or_else(|| missing("spec.template.spec.containers", pod.key_line))?;
    if items.is_empty() {
        return Err(cat.err(containers_line, "empty (a pod needs a container)"));
    }
    let containers = items
        .iter()
        .enumerate()
        .map(|(i, c)| container(c, &cat, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Workload {
        kind: kind.value.clone(),
        name: name.value,
        line: kind.line,
        replicas,
        pod: Pod {
            line: pod.key_line,
            grace: int_field(
                &pod.value,
                "terminationGracePeriodSeconds",
                0,
                i64::MAX,
                &pat,
            )?,
            cpu_limit: cpu_limit(&pod.value, &pat)?,
            containers,
        },
    }))
}

fn container(c: &Node, containers: &At<'_>, i: usize) -> Result<Container, InputError> {
    let at = containers.item(i);
    if !matches!(c.value, Value::Map(_)) {
        return Err(at.err(
            c.line,
            format!("expected a container (a mapping), found {}", c.kind()),
        ));
    }
    let name = str_field(c, "name", &at)?.ok_or_else(|| at.field("name").err(c.line, "missing"))?;
    // Named as `kubectl` patches name them: containers[rumor].
    let at = At {
        what: at.what,
        path: format!("{}[{}]", containers.path, name.value),
    };
    let command = seq_field(c, "command", &at)?
        .map(|(_, items)| string_list(items, &at.field("command")))
        .transpose()?;
    let (args_line, args) = match seq_field(c, "args", &at)? {
        Some((line, items)) => (Some(line), string_list(items, &at.field("args"))?),
        None => (None, Vec::new()),
    };
    let mut env = Vec::new();
    if let Some((_, items)) = seq_field(c, "env", &at)? {
        for (i, e) in items.iter().enumerate() {
            env.push(env_var(e, &at.field("env").item(i))?);
        }
    }
    let mut ports = Vec::new();
    if let Some((_, items)) = seq_field(c, "ports", &at)? {
        for (i, p) in items.iter().enumerate() {
            let pat = at.field("ports").item(i);
            let port = int_field(p, "containerPort", 1, 65_535, &pat)?
                .ok_or_else(|| pat.field("containerPort").err(p.line, "missing"))?;
            ports.push((str_field(p, "name", &pat)?.map(|n| n.value), port.value));
        }
    }
    let mut probes = [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ]
    .into_iter()
    .map(|k| probe(c, k, &at));
    let (startup, liveness, readiness) = (
        probes.next().transpose()?.flatten(),
        probes.next().transpose()?.flatten(),
        probes.next().transpose()?.flatten(),
    );
    Ok(Container {
        name: name.value,
        line: name.line,
        image: str_field(c, "image", &at)?.map(|i| i.value),
        command,
        args,
        args_line,
        env,
        ports,
        startup,
        liveness,
        readiness,
        cpu_limit: cpu_limit(c, &at)?,
        pre_stop_sleep: pre_stop_sleep(c, &at)?,
    })
}

/// One `env` item: its name, and its `value` or where `valueFrom` takes it from.
fn env_var(e: &Node, at: &At<'_>) -> Result<EnvVar, InputError> {
    if !matches!(e.value, Value::Map(_)) {
        return Err(at.err(
            e.line,
            format!("expected an env entry (a mapping), found {}", e.kind()),
        ));
    }
    let name = str_field(e, "name", at)?.ok_or_else(|| at.field("name").err(e.line, "missing"))?;
    let source = match (str_field(e, "value", at)?, map_field(e, "valueFrom", at)?) {
        (Some(v), _) if !v.value.is_empty() => EnvSource::Value(v.value),
        (_, Some(from)) => {
            let fat = at.field("valueFrom");
            if let Some(f) = map_field(&from.value, "fieldRef", &fat)? {
                let path = str_field(&f.value, "fieldPath", &fat.field("fieldRef"))?
                    .ok_or_else(|| fat.field("fieldRef.fieldPath").err(f.key_line, "missing"))?;
                EnvSource::Field(path.value)
            } else if from.value.get("configMapKeyRef").is_some() {
                EnvSource::Elsewhere("a ConfigMap")
            } else if from.value.get("secretKeyRef").is_some() {
                EnvSource::Elsewhere("a Secret")
            } else if from.value.get("resourceFieldRef").is_some() {
                EnvSource::Elsewhere("a resource field")
            } else {
                EnvSource::Elsewhere("another source")
            }
        }
        // Neither: the empty string, as the kubelet sets it.
        (v, None) => EnvSource::Value(v.map(|v| v.value).unwrap_or_default()),
    };
    Ok(EnvVar {
        name: name.value,
        line: e.line,
        source,
    })
}

fn probe(c: &Node, kind: ProbeKind, at: &At<'_>) -> Result<Option<Probe>, InputError> {
    let Some(e) = map_field(c, kind.field(), at)? else {
        return Ok(None);
    };
    let at = at.field(kind.field());
    let p = &e.value;
    let action = if let Some(h) = map_field(p, "httpGet", &at)? {
        let hat = at.field("httpGet");
        let port = match h.value.get("port") {
            Some(pe) => match &pe.value.value {
                Value::Int(n) if (1..=65535).contains(n) => Spanned {
                    value: PortRef::Number(*n),
                    line: pe.key_line,
                },
                Value::Str(s) if !s.is_empty() => Spanned {
                    value: s
                        .parse::<i64>()
                        .map_or_else(|_| PortRef::Name(s.clone()), PortRef::Number),
                    line: pe.key_line,
                },
                _ => {
                    return Err(hat.field("port").err(
                        pe.key_line,
                        format!(
                            "expected a port number (1-65535) or a port name, found {}",
                            pe.value.kind()
                        ),
                    ));
                }
            },
            None => return Err(hat.field("port").err(h.key_line, "missing")),
        };
        let mut headers = Vec::new();
        if let Some((_, items)) = seq_field(&h.value, "httpHeaders", &hat)? {
            for (i, hd) in items.iter().enumerate() {
                let hdat = hat.field("httpHeaders").item(i);
                let n = str_field(hd, "name", &hdat)?
                    .ok_or_else(|| hdat.field("name").err(hd.line, "missing"))?;
                headers.push(n);
            }
        }
        Action::Http(HttpGet {
            line: h.key_line,
            path: str_field(&h.value, "path", &hat)?,
            port,
            scheme: str_field(&h.value, "scheme", &hat)?,
            host: str_field(&h.value, "host", &hat)?,
            headers,
        })
    } else if p.get("tcpSocket").is_some() {
        Action::Other("tcpSocket")
    } else if p.get("exec").is_some() {
        Action::Other("exec")
    } else if p.get("grpc").is_some() {
        Action::Other("grpc")
    } else {
        Action::Missing
    };
    Ok(Some(Probe {
        kind,
        line: e.key_line,
        action,
        period: int_field(p, "periodSeconds", 1, INT32, &at)?,
        timeout: int_field(p, "timeoutSeconds", 1, INT32, &at)?,
        failure: int_field(p, "failureThreshold", 1, INT32, &at)?,
        initial_delay: int_field(p, "initialDelaySeconds", 0, INT32, &at)?,
    }))
}

/// `lifecycle.preStop`: `sleep: {seconds: N}`, or `exec` of `sleep N` (directly or
/// through `sh -c "sleep N"`). Anything else the doctor cannot time and ignores.
fn pre_stop_sleep(c: &Node, at: &At<'_>) -> Result<Option<Spanned<i64>>, InputError> {
    let lat = at.field("lifecycle");
    let Some(lc) = map_field(c, "lifecycle", at)? else {
        return Ok(None);
    };
    let pat = lat.field("preStop");
    let Some(pre) = map_field(&lc.value, "preStop", &lat)? else {
        return Ok(None);
    };
    if let Some(sleep) = map_field(&pre.value, "sleep", &pat)? {
        return int_field(&sleep.value, "seconds", 0, i64::MAX, &pat.field("sleep"));
    }
    let Some(exec) = map_field(&pre.value, "exec", &pat)? else {
        return Ok(None);
    };
    let eat = pat.field("exec");
    let Some((line, items)) = seq_field(&exec.value, "command", &eat)? else {
        return Ok(None);
    };
    let words: Vec<String> = string_list(items, &eat.field("command"))?
        .into_iter()
        .flat_map(|s| {
            s.value
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let secs = words
        .iter()
        .position(|w| w == "sleep" || w.ends_with("/sleep"))
        .and_then(|i| words.get(i + 1))
        .and_then(|n| n.trim_end_matches(['s', ';']).parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    Ok(secs.map(|s| Spanned {
        value: s.ceil() as i64,
        line,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::yaml::load;
    use super::*;

    const SET: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: r}
spec:
  replicas: 3
  template:
    spec:
      terminationGracePeriodSeconds: 20
      containers:
        - name: rumor
          args: [--drain=10s, --http=0.0.0.0:8080]
          ports: [{name: http, containerPort: 8080}]
          livenessProbe:
            httpGet: {path: /livez, port: http}
            timeoutSeconds: 2
          readinessProbe:
            httpGet:
              path: /readyz
              port: 8080
              httpHeaders: [{name: Authorization, value: x}]
          resources: {limits: {cpu: 500m}}
          lifecycle: {preStop: {exec: {command: [sh, -c, sleep 5]}}}
---
kind: Service
metadata: {name: s}
";

    #[test]
    fn reads_a_statefulset_with_lines() {
        let w = workloads(&load(SET).unwrap()).unwrap();
        assert_eq!(w.len(), 1, "the Service is skipped");
        let (w, c) = (&w[0], &w[0].pod.containers[0]);
        assert_eq!(
            (w.kind.as_str(), w.name.as_str(), w.replicas),
            ("StatefulSet", "r", 3)
        );
        assert_eq!(
            w.pod.grace.as_ref().map(|g| (g.value, g.line)),
            Some((20, 8))
        );
        assert_eq!(c.args[1].value, "--http=0.0.0.0:8080");
        assert_eq!(c.args[1].line, 11);
        let l = c.liveness.as_ref().unwrap();
        assert_eq!(
            (l.line, l.timeout_s(), l.period_s(), l.failure_threshold()),
            (13, 2, 10, 3)
        );
        assert_eq!(l.http().unwrap().port.value, PortRef::Name("http".into()));
        let r = c.readiness.as_ref().unwrap().http().unwrap();
        assert_eq!((r.path(), r.path_line()), ("/readyz", 18));
        assert_eq!(r.headers[0].value, "Authorization");
        assert_eq!(r.headers[0].line, 20);
        assert_eq!(
            c.cpu_limit.as_ref().map(|q| (q.value.as_str(), q.line)),
            Some(("500m", 21))
        );
        assert_eq!(c.pre_stop_sleep.as_ref().map(|s| s.value), Some(5));
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_field_and_line() {
        let bad = SET.replace("timeoutSeconds: 2", "timeoutSeconds: \"2\"");
        let e = workloads(&load(&bad).unwrap()).unwrap_err();
        assert_eq!(e.line, 15);
        assert!(e.message.contains("livenessProbe.timeoutSeconds"), "{e:?}");
        assert!(e.message.contains("StatefulSet/r"), "{e:?}");
        let bad = SET.replace("timeoutSeconds: 2", "timeoutSeconds: 0");
        let e = workloads(&load(&bad).unwrap()).unwrap_err();
        assert!(e.message.contains("minimum of 1"), "{e:?}");
        let bad = SET.replace("      containers:", "      containerz:");
        let e = workloads(&load(&bad).unwrap()).unwrap_err();
        assert!(
            e.message.contains("spec.template.spec.containers: missing"),
            "{e:?}"
        );
        let bad = SET.replace("[--drain=10s,", "[7,");
        let e = workloads(&load(&bad).unwrap()).unwrap_err();
        assert!(e.message.contains("args[0]") && e.line == 11, "{e:?}");
        let e = workloads(&load("- a\n- b\n").unwrap()).unwrap_err();
        assert!(e.message.contains("document 1"), "{e:?}");
        let e = workloads(&load("metadata: {name: x}\n").unwrap()).unwrap_err();
        assert!(e.message.contains("kind: missing"), "{e:?}");
    }

    #[test]
    fn integers_past_the_apis_int32_fields_are_refused_naming_field_and_line() {
        // The API server stores probe timings, replicas and ports as int32: a larger
        // value is refused there, and here before any rule multiplies it.
        for (from, to, field, line) in [
            (
                "timeoutSeconds: 2",
                "failureThreshold: 9223372036854775807",
                "livenessProbe.failureThreshold",
                15,
            ),
            (
                "timeoutSeconds: 2",
                "periodSeconds: 2147483648",
                "livenessProbe.periodSeconds",
                15,
            ),
            ("replicas: 3", "replicas: 4294967296", "spec.replicas", 5),
            (
                "containerPort: 8080}",
                "containerPort: 70000}",
                "ports[0].containerPort",
                12,
            ),
        ] {
            let bad = SET.replace(from, to);
            let e = workloads(&load(&bad).unwrap()).unwrap_err();
            assert_eq!(e.line, line, "{to}: {e:?}");
            assert!(e.message.contains(field), "{to}: {e:?}");
            assert!(e.message.contains("maximum"), "{to}: {e:?}");
        }
        // The bound itself is accepted; int64 fields (the grace period) keep theirs.
        let at_bound = SET.replace("timeoutSeconds: 2", "failureThreshold: 2147483647");
        let w = workloads(&load(&at_bound).unwrap()).unwrap();
        let l = w[0].pod.containers[0].liveness.as_ref().unwrap();
        assert_eq!(l.failure_threshold(), 2_147_483_647);
        let long_grace = SET.replace(
            "terminationGracePeriodSeconds: 20",
            "terminationGracePeriodSeconds: 9223372036854775807",
        );
        let w = workloads(&load(&long_grace).unwrap()).unwrap();
        assert_eq!(w[0].pod.grace.as_ref().map(|g| g.value), Some(i64::MAX));
    }
}
