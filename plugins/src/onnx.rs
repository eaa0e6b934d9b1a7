//! ONNX Runtime for the elements: finding the shared library, the process-wide environment, and
//! sessions on the requested device with an honest report of the execution provider in use.

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::{LazyLock, OnceLock},
};

use gst::prelude::*;
use ort::{
    environment::Environment,
    ep::{self, ExecutionProvider},
    session::Session,
    value::ValueType,
};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "recognizer-onnx",
        gst::DebugColorFlags::empty(),
        Some("Recognizer ONNX Runtime loading"),
    )
});

/// Folder where `scripts/setup` installs the library in the source tree, fixed at build time: the
/// development fallback, searched after the folder installed beside the plugin.
pub const SETUP_ORT_DIR: &str = env!("RECOGNIZER_SETUP_ORT_DIR");

/// Name of the folder beside `libgstrecognizer.so` where `meson install` puts the ONNX Runtime
/// library (`<pluginsdir>/recognizer/libonnxruntime.so.<version>`; only the versioned file, so
/// that GStreamer's plugin scanner, which looks at `*.so` files in subfolders too, skips it).
pub const INSTALLED_ORT_SUBDIR: &str = "recognizer";

/// The loaded library and the environment every session of this process shares.
pub struct Runtime {
    pub library: PathBuf,
    pub environment: Environment,
}

/// Where `scripts/setup --gpu` puts ONNX Runtime's CUDA build (`lib/`) and the CUDA 13 and
/// cuDNN 9 runtime libraries it needs (`cuda/lib/`), fixed at build time.
fn setup_gpu_dir() -> PathBuf {
    Path::new(SETUP_ORT_DIR)
        .parent()
        .map(|ort| ort.join("gpu"))
        .unwrap_or_default()
}

/// The file this code was loaded from: `libgstrecognizer.so` when GStreamer loaded the plugin,
/// the executable when the elements are linked into a program.
fn own_file() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let address = own_file as fn() -> Option<PathBuf> as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables; `info` is a valid out pointer, and
    // `dli_fname`, when set, is a NUL-terminated string owned by the loader.
    let found = unsafe { libc::dladdr(address, &mut info) } != 0;
    if !found || info.dli_fname.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    std::fs::canonicalize(path).ok()
}

/// The folder `meson install` puts ONNX Runtime in: `recognizer/` beside the plugin's own file.
pub fn installed_ort_dir() -> Option<PathBuf> {
    own_file().and_then(|f| f.parent().map(|d| d.join(INSTALLED_ORT_SUBDIR)))
}

/// `libonnxruntime.so*` files of `dir`, the shortest name (`libonnxruntime.so`, a link to the
/// versioned file) first.
fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut libs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    libs.sort_by_key(|p| p.as_os_str().len());
    libs
}

/// One place of the search order: what it is (for the error message) and the files it offers.
struct Place {
    what: String,
    files: Vec<PathBuf>,
}

impl Place {
    fn folder(what: &str, dir: &Path) -> Self {
        Self {
            what: format!("{what} {}", dir.display()),
            files: libraries_in(dir),
        }
    }
}

/// The places searched, in order (README "ONNX Runtime"):
/// 1. `ORT_DYLIB_PATH`: when set, the only candidate (silently loading another would hide a
///    mistake);
/// 2. `recognizer/` beside `libgstrecognizer.so`, where `meson install` puts the library;
/// 3. the source tree's `.ort/gpu/lib` (`scripts/setup --gpu`, also runs on the CPU) and
///    `.ort/lib` (`scripts/setup`): the development fallback, fixed at build time;
/// 4. the loader path (`libonnxruntime.so`, `libonnxruntime.so.1`: `LD_LIBRARY_PATH`, ld.so.conf).
fn search_places() -> Vec<Place> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![Place {
            what: "ORT_DYLIB_PATH".into(),
            files: vec![PathBuf::from(path)],
        }];
    }
    let mut places = Vec::new();
    match installed_ort_dir() {
        Some(dir) => places.push(Place::folder("beside the plugin:", &dir)),
        None => places.push(Place {
            what: "beside the plugin (the plugin's own file could not be found)".into(),
            files: Vec::new(),
        }),
    }
    places.push(Place::folder(
        "the source tree (scripts/setup --gpu):",
        &setup_gpu_dir().join("lib"),
    ));
    places.push(Place::folder(
        "the source tree (scripts/setup):",
        Path::new(SETUP_ORT_DIR),
    ));
    places.push(Place {
        what: "the loader path".into(),
        files: vec![
            PathBuf::from("libonnxruntime.so"),
            PathBuf::from("libonnxruntime.so.1"),
        ],
    });
    places
}

/// The CUDA 13 and cuDNN 9 libraries ONNX Runtime's CUDA provider needs, in the order they must
/// be loaded (cuBLASLt before cuBLAS), as onnxruntime's own `preload_dlls()` loads them; `true`
/// for the ones the provider can do without. cuDNN's sub-libraries are loaded by cuDNN itself.
const CUDA_LIBRARIES: [(&str, bool); 7] = [
    ("libcublasLt.so.13", false),
    ("libcublas.so.13", false),
    ("libnvrtc.so.13", true),
    ("libcurand.so.10", false),
    ("libcufft.so.12", true),
    ("libcudart.so.13", false),
    ("libcudnn.so.9", false),
];

/// Directories searched for [`CUDA_LIBRARIES`], in order: `RECOGNIZER_CUDA_LIBRARY_PATH`
/// (colon-separated), then `cuda/lib` beside the loaded ONNX Runtime library's folder (where
/// `scripts/setup --gpu` puts them). After these, the loader's own search path.
fn cuda_library_dirs(ort_library: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("RECOGNIZER_CUDA_LIBRARY_PATH")
        .map(|paths| std::env::split_paths(&paths).collect())
        .unwrap_or_default();
    if let Some(ort_dir) = ort_library.parent().and_then(Path::parent) {
        dirs.push(ort_dir.join("cuda").join("lib"));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// A loader error with its cause (libloading's own text is only "dlopen failed").
fn dl_error(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Loads the CUDA runtime libraries once per process with `RTLD_GLOBAL`, so that the CUDA
/// provider (which names them by soname) finds them without `LD_LIBRARY_PATH`. Returns the
/// files loaded, or the required libraries that could not be loaded and why.
fn preload_cuda_libraries(ort_library: &Path) -> Result<&'static [PathBuf], String> {
    static LOADED: OnceLock<Result<Vec<PathBuf>, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
            // The driver's library comes with the NVIDIA driver, never with the runtime set.
            // SAFETY: as below.
            if let Err(e) = unsafe { Library::open(Some("libcuda.so.1"), RTLD_NOW | RTLD_GLOBAL) } {
                return Err(format!(
                    "no NVIDIA driver: libcuda.so.1 could not be loaded ({}); CUDA needs an NVIDIA GPU with its driver (580 or newer for CUDA 13)",
                    dl_error(&e)
                ));
            }
            let dirs = cuda_library_dirs(ort_library);
            let (mut loaded, mut missing) = (Vec::new(), Vec::new());
            for (name, optional) in CUDA_LIBRARIES {
                let candidates = dirs
                    .iter()
                    .map(|d| d.join(name))
                    .filter(|p| p.is_file())
                    .chain([PathBuf::from(name)]);
                let mut errors = Vec::new();
                let mut found = None;
                for path in candidates {
                    // SAFETY: these are NVIDIA's runtime libraries; their initialisers only
                    // register themselves. They stay loaded for the life of the process.
                    match unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) } {
                        Ok(library) => {
                            std::mem::forget(library);
                            found = Some(path);
                            break;
                        }
                        Err(e) => errors.push(dl_error(&e)),
                    }
                }
                match found {
                    Some(path) => {
                        gst::debug!(CAT, "loaded {}", path.display());
                        loaded.push(path);
                    }
                    None if optional => gst::debug!(CAT, "optional {name} not loaded: {}", errors.join("; ")),
                    None => missing.push(format!("{name} ({})", errors.join("; "))),
                }
            }
            if missing.is_empty() {
                Ok(loaded)
            } else {
                Err(format!(
                    "the CUDA 13 / cuDNN 9 runtime libraries are missing: {} (searched {}{}the loader path; run scripts/setup --gpu, or set RECOGNIZER_CUDA_LIBRARY_PATH to the folders holding them)",
                    missing.join(", "),
                    dirs.iter().map(|d| format!("{}, ", d.display())).collect::<String>(),
                    if dirs.is_empty() { "" } else { "then " }
                ))
            }
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// Loads ONNX Runtime once per process, from the first place of [`search_places`] that has a
/// loadable library. The error names every place searched and why each file failed.
pub fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let mut searched = Vec::new();
            for place in search_places() {
                if place.files.is_empty() {
                    searched.push(format!("{} (no libonnxruntime.so*)", place.what));
                    continue;
                }
                let mut failures = Vec::new();
                for path in place.files {
                    match ort::init_from(&path) {
                        Ok(builder) => match builder.with_name("recognizer").build() {
                            Ok(environment) => {
                                gst::info!(CAT, "loaded ONNX Runtime from {} ({})", path.display(), place.what);
                                return Ok(Runtime { library: path, environment });
                            }
                            Err(e) => failures.push(format!("{}: {e}", path.display())),
                        },
                        Err(e) => {
                            gst::debug!(CAT, "could not load ONNX Runtime from {}: {e}", path.display());
                            failures.push(e.to_string());
                        }
                    }
                }
                searched.push(format!("{} ({})", place.what, failures.join("; ")));
            }
            Err(format!(
                "could not load the ONNX Runtime library (1.30 or newer): install it with the plugin (meson install), run scripts/setup in the source tree, or set ORT_DYLIB_PATH to libonnxruntime.so; searched: {}",
                searched.join(", then ")
            ))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Default of the `device` property of the inference elements.
pub const DEFAULT_DEVICE: &str = "cpu";
/// Default of their `fallback-to-cpu` property.
pub const DEFAULT_FALLBACK_TO_CPU: bool = true;

/// The `device`, `fallback-to-cpu` and `threads` properties every inference element has.
pub fn inference_properties(default_threads: u32) -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("device")
            .nick("Device")
            .blurb("Where inference runs: cpu, cuda or cuda:N")
            .default_value(Some(DEFAULT_DEVICE))
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("fallback-to-cpu")
            .nick("Fall back to CPU")
            .blurb("With device=cuda and no usable CUDA: run on the CPU with a warning (true) or fail at start (false)")
            .default_value(DEFAULT_FALLBACK_TO_CPU)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("threads")
            .nick("Threads")
            .blurb("ONNX Runtime intra-op threads (0 = one per physical core)")
            .maximum(256)
            .default_value(default_threads)
            .mutable_ready()
            .build(),
    ]
}

/// The element error for a model that could not be loaded: `NotFound` when the file is missing,
/// `OpenRead` otherwise, with `message` (which names the file and the problem) as its text.
pub fn model_load_error(model: &Path, message: &str) -> gst::ErrorMessage {
    let kind = if model.is_file() {
        gst::ResourceError::OpenRead
    } else {
        gst::ResourceError::NotFound
    };
    gst::error_msg!(kind, ("{}", message))
}

/// Where a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(Self::Cuda)
                .ok_or_else(|| {
                    format!(
                        "invalid device '{s}': expected 'cpu', 'cuda' or 'cuda:N' (N = GPU index)"
                    )
                }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// What to load and where.
#[derive(Clone, Debug)]
pub struct SessionRequest<'a> {
    pub model: &'a Path,
    pub device: Device,
    /// With `device` CUDA and no usable CUDA: run on the CPU instead of failing.
    pub fallback_to_cpu: bool,
    /// ONNX Runtime intra-op threads; 0 = its default (one per physical core).
    pub threads: usize,
}

/// The execution provider names [`LoadedSession::execution_provider`] reports.
pub const CPU_EXECUTION_PROVIDER: &str = "CPUExecutionProvider";
pub const CUDA_EXECUTION_PROVIDER: &str = "CUDAExecutionProvider";

/// A session and the execution provider it really uses.
pub struct LoadedSession {
    pub session: Session,
    /// `CPUExecutionProvider` or `CUDAExecutionProvider`.
    pub execution_provider: &'static str,
    /// Why the requested device was not used, when it fell back to the CPU.
    pub fallback_reason: Option<String>,
}

/// One model input or output, for contract checks and error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// -1 for dynamic dimensions.
    pub shape: Vec<i64>,
    pub element: String,
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| if *d < 0 { "?".into() } else { d.to_string() })
            .collect();
        write!(f, "{} [{}] {}", self.name, dims.join(","), self.element)
    }
}

fn tensor_info(name: &str, ty: &ValueType) -> TensorInfo {
    match ty {
        ValueType::Tensor { ty, shape, .. } => TensorInfo {
            name: name.to_string(),
            shape: shape.iter().copied().collect(),
            element: format!("{ty:?}").to_lowercase(),
        },
        other => TensorInfo {
            name: name.to_string(),
            shape: Vec::new(),
            element: format!("{other:?}"),
        },
    }
}

/// The session's inputs and outputs.
pub fn describe(session: &Session) -> (Vec<TensorInfo>, Vec<TensorInfo>) {
    let inputs = session
        .inputs()
        .iter()
        .map(|i| tensor_info(i.name(), i.dtype()))
        .collect();
    let outputs = session
        .outputs()
        .iter()
        .map(|o| tensor_info(o.name(), o.dtype()))
        .collect();
    (inputs, outputs)
}

/// "inputs: a [1,3] float32; outputs: b [?,60] float32", for error messages.
pub fn describe_text(inputs: &[TensorInfo], outputs: &[TensorInfo]) -> String {
    let join = |v: &[TensorInfo]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("inputs: {}; outputs: {}", join(inputs), join(outputs))
}

fn build(
    request: &SessionRequest<'_>,
    runtime: &Runtime,
    cuda: Option<(i32, ep::cuda::ConvAlgorithmSearch)>,
) -> Result<Session, String> {
    let model = request.model.display();
    let err = |e: &dyn fmt::Display| format!("could not load {model} as an ONNX model: {e}");
    let mut builder = Session::builder(&runtime.environment).map_err(|e| err(&e))?;
    if request.threads > 0 {
        builder = builder
            .with_intra_threads(request.threads)
            .map_err(|e| err(&e))?;
    }
    builder = builder.with_inter_threads(1).map_err(|e| err(&e))?;
    if let Some((id, search)) = cuda {
        builder = builder
            .with_execution_providers([ep::CUDA::default()
                .with_device_id(id)
                .with_conv_algorithm_search(search)
                .build()
                .error_on_failure()])
            .map_err(|e| {
                format!("CUDA execution provider (device cuda:{id}) could not be enabled: {e}")
            })?;
    }
    builder.commit_from_file(request.model).map_err(|e| err(&e))
}

/// Loads a model on the requested device; falls back to the CPU when allowed.
///
/// On CUDA, cuDNN picks convolution algorithms by its heuristics: ONNX Runtime's default, an
/// exhaustive benchmark of every algorithm, costs up to a second on the first call of every
/// input shape, and a session group runs as many shapes as it has batch sizes.
pub fn load_session(request: &SessionRequest<'_>) -> Result<LoadedSession, String> {
    load_session_with(request, ep::cuda::ConvAlgorithmSearch::Heuristic)
}

/// [`load_session`] with another cuDNN convolution algorithm search (benchmarks compare them).
pub fn load_session_with(
    request: &SessionRequest<'_>,
    conv_search: ep::cuda::ConvAlgorithmSearch,
) -> Result<LoadedSession, String> {
    let model = request.model;
    if !model.is_file() {
        return Err(format!(
            "model file {} does not exist or is not a file",
            model.display()
        ));
    }
    let runtime = runtime()?;
    match request.device {
        Device::Cpu => Ok(LoadedSession {
            session: build(request, runtime, None)?,
            execution_provider: CPU_EXECUTION_PROVIDER,
            fallback_reason: None,
        }),
        Device::Cuda(id) => {
            let attempt = match ep::CUDA::is_available() {
                Ok(true) => preload_cuda_libraries(&runtime.library)
                    .and_then(|_| build(request, runtime, Some((id, conv_search)))),
                Ok(false) => Err(format!(
                    "device=cuda:{id} was requested but the ONNX Runtime library {} has no CUDA execution provider (a CPU-only build: scripts/setup --gpu installs the onnxruntime-gpu build for CUDA 13 and cuDNN 9)",
                    runtime.library.display()
                )),
                Err(e) => Err(format!(
                    "could not query ONNX Runtime's execution providers: {e}"
                )),
            };
            match attempt {
                Ok(session) => Ok(LoadedSession {
                    session,
                    execution_provider: CUDA_EXECUTION_PROVIDER,
                    fallback_reason: None,
                }),
                Err(reason) if request.fallback_to_cpu => Ok(LoadedSession {
                    session: build(request, runtime, None)?,
                    execution_provider: CPU_EXECUTION_PROVIDER,
                    fallback_reason: Some(reason),
                }),
                Err(reason) => Err(format!(
                    "{reason}; set fallback-to-cpu=true to run on the CPU instead"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(3)));
        let err = "gpu".parse::<Device>().unwrap_err();
        assert!(err.contains("'gpu'") && err.contains("cuda:N"), "{err}");
        assert!("cuda:-1".parse::<Device>().is_err());
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn the_installed_folder_is_beside_the_file_holding_this_code() {
        // Here the code is linked into the test executable; in GStreamer it is the plugin.
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        let dir = installed_ort_dir().expect("dladdr finds this code's file");
        assert_eq!(dir, exe.parent().unwrap().join(INSTALLED_ORT_SUBDIR));
    }

    #[test]
    fn without_ort_dylib_path_the_search_goes_beside_the_plugin_then_the_source_tree_then_the_loader()
     {
        if std::env::var_os("ORT_DYLIB_PATH").is_some() {
            return; // an explicit choice is the only place: nothing else to check
        }
        let places: Vec<String> = search_places().into_iter().map(|p| p.what).collect();
        assert_eq!(places.len(), 4, "{places:?}");
        assert!(places[0].starts_with("beside the plugin: ") && places[0].ends_with("/recognizer"));
        assert!(places[1].ends_with(".ort/gpu/lib"), "{places:?}");
        assert_eq!(
            places[2],
            format!("the source tree (scripts/setup): {SETUP_ORT_DIR}")
        );
        assert_eq!(places[3], "the loader path");
    }
}
