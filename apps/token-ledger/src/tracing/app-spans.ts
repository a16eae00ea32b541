/**
 * What the app adds to the instrumentations when tracing is on (create-app.ts loads this only then):
 * the route on the HTTP server span, and a span per CQRS command.
 */
import { context, trace } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';
import type { CommandBus, ICommand } from '@nestjs/cqrs';
import type { FastifyInstance } from 'fastify';
import { inSpan } from '@token-ledger/envelope';

/**
 * The HTTP instrumentation names its server span `<METHOD> <route>` and sets `http.route` from the
 * request's RPC metadata, which only the framework knows: Fastify's matched route, told here.
 * It also records the URL as sent, which holds subjects (user ids, addresses) in paths like
 * /v1/subjects/{sub} and query strings like ?subject=: those attributes are replaced by the route
 * pattern, so a trace backend never receives a user id.
 */
export function nameServerSpansByRoute(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', async (request) => {
    const route = request.routeOptions?.url ?? 'unmatched';
    const rpc = getRPCMetadata(context.active());
    if (rpc?.type === RPCType.HTTP) rpc.route = route;
    trace.getActiveSpan()?.setAttributes({ ...Object.fromEntries(URL_ATTRIBUTES.map((name) => [name, route])), 'url.query': '' });
  });
}

/** The attributes (old and stable HTTP semantic conventions) that carry the raw path or URL. */
const URL_ATTRIBUTES = ['http.target', 'http.url', 'url.path', 'url.full'] as const;

/**
 * `command <Name>` around every command the bus executes (HTTP, the anomaly engine's actions, the
 * sweeper, the reconciler). @nestjs/cqrs has no interceptors for its buses, so execute is wrapped.
 */
export function traceCommands(bus: CommandBus): void {
  const execute = bus.execute.bind(bus) as (command: ICommand, ...rest: unknown[]) => Promise<unknown>;
  (bus as { execute: (command: ICommand, ...rest: unknown[]) => Promise<unknown> }).execute = (command, ...rest) =>
    inSpan(`command ${command.constructor.name.replace(/Command$/, '')}`, { 'command.name': command.constructor.name }, () => execute(command, ...rest));
}
