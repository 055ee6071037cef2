import picomatch from "picomatch";
import { isSecretName } from "../util/secrets.js";

/**
 * What a replicate may inherit of the harness's environment: the system's basics, the
 * locale, library paths and proxies, and the variables of CUDA, the GPU libraries,
 * Python and its numeric libraries. Anything else (a database URL, a cloud's settings)
 * stays out unless the task's `pass_env` or AUTORESEARCH_PASS_ENV names it.
 */
export const PASSED_ENV = [
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "PATH",
  "TERM",
  "TZ",
  "LANG",
  "LANGUAGE",
  "LC_*",
  "TMPDIR",
  "HOSTNAME",
  "LD_LIBRARY_PATH",
  "LIBRARY_PATH",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "CUDA_*",
  "CUDNN_*",
  "CUBLAS_*",
  "NVIDIA_*",
  "NCCL_*",
  "NVSHMEM_*",
  "TORCH_*",
  "TORCHINDUCTOR_*",
  "PYTORCH_*",
  "TRITON_*",
  "XLA_*",
  "JAX_*",
  "HIP_*",
  "ROCM_*",
  "HSA_*",
  "PYTHON*",
  "VIRTUAL_ENV",
  "CONDA_*",
  "HF_*",
  "TRANSFORMERS_*",
  "TOKENIZERS_PARALLELISM",
  "OMP_*",
  "MKL_*",
  "OPENBLAS_*",
  "KMP_*",
  "NUMEXPR_*",
  "NODE_*",
];

/**
 * The harness's environment as a replicate gets it: only the allowed names (and those
 * `more` adds, names or globs), never a credential, never a stale AR_ variable.
 */
export function scrubbedEnv(
  source: NodeJS.ProcessEnv = process.env,
  more: string[] = [],
): Record<string, string> {
  const fromEnv = (source.AUTORESEARCH_PASS_ENV ?? "").split(",").map((s) => s.trim());
  const allowed = picomatch([...PASSED_ENV, ...more, ...fromEnv.filter(Boolean)]);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || !allowed(name) || isSecretName(name) || name.startsWith("AR_"))
      continue;
    env[name] = value;
  }
  return env;
}
