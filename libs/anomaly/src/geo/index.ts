/** IP geolocation for the travel rules: address classes, great-circle distance, the DB-IP Lite locator. */
export * from './address';
export * from './distance';
export * from './country-centroids';
export * from './geo-locator';
