// Which backend serves which model, fixed at start-up from the configuration. sk_test_ keys are
// always served by the simulator, whatever the model's live backend is.
import type { Config, ModelConfig } from '../config.ts';
import type { ChatBackend } from './backend.ts';
import { OpenAICompatibleBackend } from './openai-compatible.ts';
import { SimulatorBackend } from './simulator.ts';

export type ModelRoute = { model: ModelConfig; backend: ChatBackend };

export class ModelRegistry {
  private readonly live = new Map<string, ModelRoute>();
  private readonly sandbox = new Map<string, ModelRoute>();

  constructor(config: Config) {
    const simulator = new SimulatorBackend();
    for (const model of config.models) {
      const backend = model.backend === 'simulator' ? simulator : OpenAICompatibleBackend.fromModel(model, config.upstreamTimeoutMs);
      this.live.set(model.id, { model, backend });
      this.sandbox.set(model.id, { model, backend: simulator });
    }
  }

  resolve(modelId: string, mode: 'live' | 'test'): ModelRoute | undefined {
    return (mode === 'live' ? this.live : this.sandbox).get(modelId);
  }

  list(): readonly ModelConfig[] {
    return [...this.live.values()].map((r) => r.model);
  }

  /** One line per model for the start-up log; never includes credentials. */
  describe(): string[] {
    return [...this.live.values()].map(
      (r) => `model ${r.model.id} -> ${r.backend.describe()}${r.model.upstream_model ? ` (as ${r.model.upstream_model})` : ''}`,
    );
  }

  async close(): Promise<void> {
    const backends = new Set([...this.live.values()].map((r) => r.backend));
    await Promise.all([...backends].map((b) => b.close?.()));
  }
}
