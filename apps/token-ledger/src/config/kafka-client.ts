import { Kafka, logLevel } from 'kafkajs';
import { kafkajsSecurity, type KafkaSecurity } from '@token-ledger/verifier';

/** Where and how the ledger's Kafka clients connect, as plain data (it crosses into worker threads). */
export interface KafkaConnection {
  brokers: string[];
  /** TLS / SASL from KAFKA_SSL_* / KAFKA_SASL_* (config.kafkaSecurity); undefined = plaintext. */
  security?: KafkaSecurity;
}

/**
 * The one place the ledger builds a kafkajs client (relay, propagator, topic admin, anomaly
 * consumer), so every client gets the same TLS and SASL settings.
 */
export function createKafka(clientId: string, connection: KafkaConnection): Kafka {
  return new Kafka({ clientId, brokers: connection.brokers, logLevel: logLevel.WARN, connectionTimeout: 3_000, ...kafkajsSecurity(connection.security) });
}
