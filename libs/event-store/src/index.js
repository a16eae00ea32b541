"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __exportStar = (this && this.__exportStar) || function(m, exports) {
    for (var p in m) if (p !== "default" && !Object.prototype.hasOwnProperty.call(exports, p)) __createBinding(exports, m, p);
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.openEventStore = exports.dropPostgresSchema = exports.PostgresEventStore = exports.EmbeddedEventStore = exports.WakeHub = exports.PollingSubscription = exports.SqlKeyValueStore = exports.SqlEventStore = void 0;
__exportStar(require("./event-store"), exports);
__exportStar(require("./errors"), exports);
var sql_event_store_1 = require("./sql-event-store");
Object.defineProperty(exports, "SqlEventStore", { enumerable: true, get: function () { return sql_event_store_1.SqlEventStore; } });
var sql_key_value_store_1 = require("./sql-key-value-store");
Object.defineProperty(exports, "SqlKeyValueStore", { enumerable: true, get: function () { return sql_key_value_store_1.SqlKeyValueStore; } });
var polling_subscription_1 = require("./polling-subscription");
Object.defineProperty(exports, "PollingSubscription", { enumerable: true, get: function () { return polling_subscription_1.PollingSubscription; } });
Object.defineProperty(exports, "WakeHub", { enumerable: true, get: function () { return polling_subscription_1.WakeHub; } });
var embedded_event_store_1 = require("./embedded-event-store");
Object.defineProperty(exports, "EmbeddedEventStore", { enumerable: true, get: function () { return embedded_event_store_1.EmbeddedEventStore; } });
var postgres_event_store_1 = require("./postgres-event-store");
Object.defineProperty(exports, "PostgresEventStore", { enumerable: true, get: function () { return postgres_event_store_1.PostgresEventStore; } });
Object.defineProperty(exports, "dropPostgresSchema", { enumerable: true, get: function () { return postgres_event_store_1.dropPostgresSchema; } });
var open_event_store_1 = require("./open-event-store");
Object.defineProperty(exports, "openEventStore", { enumerable: true, get: function () { return open_event_store_1.openEventStore; } });
