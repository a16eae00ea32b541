import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { KeyRing, LedgerSecrets } from '@token-ledger/crypto';
import type { EventStore } from '@token-ledger/event-store';
import { ApiKeyGuard } from './api-keys/api-key.guard';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ListApiKeysHandler } from './api-keys/list-api-keys.query';
import { AdminController } from './admin/admin.controller';
import { HealthController } from './health/health.controller';
import { LedgerMetrics } from './health/metrics';
import type { PoisonRecord } from '@token-ledger/messaging';
import { AccessTokenMinter } from './ledger/access-token-minter';
import { FamilyPrefetch } from './ledger/family-prefetch';
import { AggregateRepository, type Aggregate } from './ledger/aggregate-repository';
import { CommandNames } from './ledger/command-names';
import { anomalyAggregate, apiKeyAggregate, clientAggregate, familyAggregate, ssfStreamAggregate, subjectAggregate } from './ledger/aggregates';
import { ApiKeyRegistry } from './ledger/api-key-registry';
import { CreateApiKeyHandler } from './ledger/commands/create-api-key.command';
import { RevokeApiKeyHandler } from './ledger/commands/revoke-api-key.command';
import { ClientRegistry } from './ledger/client-registry';
import { IssueTokenHandler } from './ledger/commands/issue-token.command';
import { RegisterClientHandler } from './ledger/commands/register-client.command';
import { ChangeClientPolicyHandler } from './ledger/commands/change-client-policy.command';
import { DisableClientHandler, EnableClientHandler } from './ledger/commands/disable-client.command';
import { RotateClientSecretHandler } from './ledger/commands/rotate-client-secret.command';
import { RevokeAccessTokenHandler } from './ledger/commands/revoke-access-token.command';
import { RevokeFamilyHandler } from './ledger/commands/revoke-family.command';
import { RevokeSubjectHandler, SubjectRevocationsInProgress } from './ledger/commands/revoke-subject.command';
import { RotateTokenHandler } from './ledger/commands/rotate-token.command';
import { ExpireIdleHandler } from './ledger/commands/expire-idle.command';
import { RecordRejectionsHandler } from './ledger/commands/record-rejections.command';
import { RejectionRecorder } from './ledger/rejection-recorder';
import { GetClientHandler } from './ledger/queries/get-client.query';
import { ExpirySweeper } from './read-models/expiry-sweeper';
import { SubjectRevocationReconciler } from './ledger/subject-revocation-reconciler';
import { GetFamilyHandler, ListSubjectFamiliesHandler, OverviewHandler, SearchAnomaliesHandler, SearchAuditHandler } from './read-models/read-model.queries';
import { ReadModelsController } from './read-models/read-models.controller';
import { RevocationsController, RevocationsService, REVOCATIONS_OPTIONS } from './revocations';
import { AnomaliesController } from './anomaly/anomalies.controller';
import { ANOMALY_OPTIONS, AnomalyService } from './anomaly/anomaly.service';
import { TriageAnomalyHandler } from './ledger/commands/triage-anomaly.command';
import { SSF_STREAM_HANDLERS } from './ledger/commands/ssf-stream.command';
import { SsfConfigurationController } from './ssf/ssf-configuration.controller';
import { SsfStreamsController } from './ssf/ssf-streams.controller';
import { GetSsfStreamHandler, ListSsfStreamsHandler } from './ssf/ssf-stream.queries';
import { FamilyTimelineHandler } from './forensics/family-timeline.query';
import { FamilyVerificationHandler } from './forensics/family-verification.query';
import { ForensicsController } from './forensics/forensics.controller';
import { ResolveTokenHandler } from './ledger/queries/introspect-token.query';
import {
  ANOMALY_REPOSITORY,
  API_KEY_REPOSITORY,
  CLIENT_REPOSITORY,
  EVENT_STORE,
  FAMILY_REPOSITORY,
  LEDGER_CONFIG,
  READ_MODELS,
  SUBJECT_REPOSITORY,
  SSF_STREAM_REPOSITORY,
  CHAIN_MAC_KEY,
} from './ledger/tokens';
import { ClientAuthenticator } from './oauth/client-authenticator';
import { OAuthController } from './oauth/oauth.controller';
import { TokenEndpoint } from './oauth/token-endpoint';
import { WellKnownController } from './oauth/well-known.controller';
import { ApiKeyLimiter, AuthFailureLimiter } from './rate-limit';
import { DpopChecker } from './dpop/dpop-checker';
import type { LedgerRuntime } from './runtime';
import { SsfDelivery } from './ssf-delivery/ssf-delivery';
import { SsfPollController } from './ssf-delivery/ssf-poll.controller';

function repository(token: symbol, aggregate: Aggregate<never, never>): Provider {
  return {
    provide: token,
    useFactory: (store: EventStore, metrics: LedgerMetrics, macKey: Buffer | null) =>
      new AggregateRepository(store, aggregate, metrics.repositoryObserver(), macKey ?? undefined),
    inject: [EVENT_STORE, LedgerMetrics, CHAIN_MAC_KEY],
  };
}

@Module({})
export class AppModule {
  /** The runtime (store, keys, config) is opened before Nest so start-up errors are plain and early. */
  static forRoot(runtime: LedgerRuntime): DynamicModule {
    return {
      module: AppModule,
      imports: [CqrsModule.forRoot()],
      controllers: [
        OAuthController,
        WellKnownController,
        AdminController,
        ApiKeysController,
        ReadModelsController,
        ForensicsController,
        AnomaliesController,
        RevocationsController,
        SsfConfigurationController,
        SsfStreamsController,
        HealthController,
        SsfPollController,
      ],
      providers: [
        { provide: LEDGER_CONFIG, useValue: runtime.config },
        { provide: EVENT_STORE, useValue: runtime.store },
        { provide: KeyRing, useValue: runtime.keyRing },
        { provide: LedgerSecrets, useValue: runtime.secrets },
        { provide: LedgerMetrics, useValue: runtime.metrics },
        { provide: READ_MODELS, useValue: runtime.readModels },
        { provide: AuthFailureLimiter, useValue: runtime.rateLimits.authFailures },
        { provide: ApiKeyLimiter, useValue: runtime.rateLimits.v1 },
        { provide: CHAIN_MAC_KEY, useValue: runtime.chainMacKey ?? null },
        { provide: SsfDelivery, useFactory: () => new SsfDelivery(runtime) },
        {
          provide: DpopChecker,
          useValue: new DpopChecker(runtime.config.dpop, runtime.config.issuer, runtime.secrets.dpopNonceKey, runtime.dpopReplay),
        },
        repository(FAMILY_REPOSITORY, familyAggregate as Aggregate<never, never>),
        repository(SUBJECT_REPOSITORY, subjectAggregate as Aggregate<never, never>),
        repository(CLIENT_REPOSITORY, clientAggregate as Aggregate<never, never>),
        repository(API_KEY_REPOSITORY, apiKeyAggregate as Aggregate<never, never>),
        repository(ANOMALY_REPOSITORY, anomalyAggregate as Aggregate<never, never>),
        repository(SSF_STREAM_REPOSITORY, ssfStreamAggregate as Aggregate<never, never>),
        ...SSF_STREAM_HANDLERS,
        GetSsfStreamHandler,
        ListSsfStreamsHandler,
        CommandNames,
        ClientRegistry,
        AccessTokenMinter,
        FamilyPrefetch,
        ClientAuthenticator,
        TokenEndpoint,
        ApiKeyRegistry,
        ApiKeyGuard,
        CreateApiKeyHandler,
        RevokeApiKeyHandler,
        TriageAnomalyHandler,
        ListApiKeysHandler,
        RegisterClientHandler,
        RotateClientSecretHandler,
        DisableClientHandler,
        EnableClientHandler,
        ChangeClientPolicyHandler,
        IssueTokenHandler,
        RotateTokenHandler,
        RevokeFamilyHandler,
        RevokeSubjectHandler,
        SubjectRevocationsInProgress,
        SubjectRevocationReconciler,
        RevokeAccessTokenHandler,
        ExpireIdleHandler,
        RecordRejectionsHandler,
        RejectionRecorder,
        ExpirySweeper,
        FamilyTimelineHandler,
        FamilyVerificationHandler,
        RevocationsService,
        AnomalyService,
        {
          provide: ANOMALY_OPTIONS,
          useValue: {
            topics: runtime.messaging.topics,
            groupId: `${runtime.messaging.groupPrefix}-anomaly`,
            onError: (err: unknown, component: string) => runtime.logger.error({ err }, `${component} failed; retrying from its checkpoint`),
            onPoison: (poison: PoisonRecord, component: string) => runtime.metrics.reportPoison(runtime.logger, poison, component),
          },
        },
        {
          provide: REVOCATIONS_OPTIONS,
          useValue: {
            topics: runtime.messaging.topics,
            groupId: `${runtime.messaging.groupPrefix}-revocations`,
            onError: (err: unknown, component: string) => runtime.logger.error({ err }, `${component} failed; retrying from its checkpoint`),
            onPoison: (poison: PoisonRecord, component: string) => runtime.metrics.reportPoison(runtime.logger, poison, component),
          },
        },
        GetFamilyHandler,
        ListSubjectFamiliesHandler,
        SearchAuditHandler,
        SearchAnomaliesHandler,
        OverviewHandler,
        ResolveTokenHandler,
        GetClientHandler,
      ],
    };
  }
}
