/**
 * Side-effect module: starts tracing when the OTEL_* environment asks for it. The first import of
 * the CLI (apps/cli/src/main.ts) and, through `--require`, of every store thread (tracing/sdk.ts
 * tells libs/event-store to preload it), so the instrumentations see pg, kafkajs and Fastify load.
 */
import { startTracing } from './tracing';

startTracing();
