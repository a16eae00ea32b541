/**
 * What the app adds to the instrumentations when tracing is on (create-app.ts loads this only then):
 * the route on the HTTP server span, and a span per CQRS command.
 */
import { context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { CommandBus, ICommand } from '@nestjs/cqrs';
import type { FastifyInstance } from 'fastify';
import { inSpan } from '@token-ledger/envelope';

/**
 * The HTTP instrumentation names its server span `<METHOD> <route>` and sets `http.route` from the
 * request's RPC metadata, which only the framework knows: Fastify's matched route, told here.
 */
export function nameServerSpansByRoute(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', async (request) => {
    const rpc = getRPCMetadata(context.active());
    if (rpc?.type === RPCType.HTTP) rpc.route = request.routeOptions?.url ?? 'unmatched';
  });
}

/**
 * `command <Name>` around every command the bus executes (HTTP, the anomaly engine's actions, the
 * sweeper, the reconciler). @nestjs/cqrs has no interceptors for its buses, so execute is wrapped.
 */
export function traceCommands(bus: CommandBus): void {
  const execute = bus.execute.bind(bus) as (command: ICommand, ...rest: unknown[]) => Promise<unknown>;
  (bus as { execute: (command: ICommand, ...rest: unknown[]) => Promise<unknown> }).execute = (command, ...rest) =>
    inSpan(`command ${command.constructor.name.replace(/Command$/, '')}`, { 'command.name': command.constructor.name }, () => execute(command, ...rest));
}
