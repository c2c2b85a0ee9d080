// The API's JSON as the dashboard reads it (only the fields it uses).

export interface Placement {
  start: number;
  size: number;
}

export interface MigInstance {
  uuid: string;
  profile: string;
  memory: number;
  parent_gpu: string;
  placement?: Placement;
  session_id: string | null;
  allocated: boolean;
}

export interface Gpu {
  index: number;
  uuid: string;
  name: string;
  memory_total: number;
  memory_used: number;
  mig_enabled: boolean;
  mig_instances: MigInstance[];
  session_id: string | null;
  temperature: number | null;
  utilization: number | null;
  power_usage: number | null;
  power_limit: number | null;
}

export interface DeviceSample {
  uuid: string;
  gpu_uuid: string;
  gpu_index: number;
  model: string;
  profile?: string;
  session_id: string | null;
  user_id: string | null;
  temperature_c: number | null;
  utilization_pct: number | null;
  power_w?: number | null;
  memory_used_mib: number | null;
  memory_total_mib: number | null;
}

export interface Realtime {
  taken_at?: string;
  at?: string;
  gpus: DeviceSample[];
  instances: DeviceSample[];
}

export interface Session {
  id: string;
  session_id?: string;
  user_id: string;
  status: string;
  created_at: string;
  expires_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  gpu_uuid: string | null;
  gpu_index: number | null;
  mig_profile: string | null;
  project: string | null;
  team: string | null;
  ssh_command?: string;
  ssh_host?: string;
  ssh_port?: number;
  ssh_user?: string;
  ssh_host_key?: string;
  ssh_private_key?: string;
}

export interface Alert {
  id: number;
  rule: string;
  state: string;
  severity: string;
  summary: string;
  labels: Record<string, string>;
  fired_at: string | null;
  pending_at: string | null;
  resolved_at: string | null;
  acked_at: string | null;
  acked_by: string | null;
  value: number | null;
}

export interface Budget {
  id: number;
  budget: string;
  scope: string;
  name: string;
  usd_per_month: number;
  used_usd: number;
  forecast_usd: number;
  used_ratio: number;
  forecast_ratio: number;
}

export interface Connection {
  id: number;
  source: string;
  outcome: string;
  reason: string | null;
  started_at: string;
  ended_at: string | null;
  duration_seconds: number | null;
  bytes_in: number;
  bytes_out: number;
}

export interface CostReport {
  group_by: string;
  step: string;
  from: string;
  to: string;
  rows: Record<string, string | number>[];
  totals: Record<string, string | number>[];
  total_usd: number;
  idle_total_usd: number;
}

export interface Available {
  available_instances: MigInstance[];
  creatable: Record<string, number>;
  whole_gpus: { index: number; name: string; uuid: string }[];
  mig_mode: string;
}

export interface CatalogModel {
  key: string;
  match?: string[];
  memory_gb: number;
  mig: boolean;
  usd_per_hour: number;
  profiles: { name: string; compute_slices?: number; memory_slices?: number; usd_per_hour?: number; [k: string]: unknown }[];
}

// GET /api/v1/gpu-nodes (both backends; the Docker one's local host or a cluster's nodes).
export interface NodeResource {
  resource: string;
  profile: string | null;
  capacity: number;
  allocatable: number;
  in_use: number;
  free: number;
}

export interface GpuNode {
  id: string;
  name: string;
  backend: "docker" | "kubernetes";
  cluster: string;
  description: string;
  labels: Record<string, string>;
  status: "active" | "maintenance" | "drained";
  status_reason: string | null;
  updated_at: string | null;
  updated_by: string | null;
  takes_sessions: boolean;
  refusal: string | null;
  gpu_count: number;
  gpu_memory_mib?: number;
  running_sessions: number;
  sessions: string[];
  drain_complete: boolean | null;
  // Docker backend
  gpu_models?: Record<string, number>;
  mig_instances?: number;
  telemetry_at?: string | null;
  gpus?: { uuid: string; index: number; model: string; mig_enabled: boolean; memory_total_mib: number }[];
  still_running?: { id: string; user_id?: string; status?: string; expires_at?: string; gpu_uuid?: string | null }[];
  // Kubernetes backend
  product?: string | null;
  resources?: NodeResource[];
  ready?: boolean;
  cordoned?: boolean;
}

export interface NodeList {
  nodes: GpuNode[];
  count: number;
  total: number;
  backend?: string;
}
