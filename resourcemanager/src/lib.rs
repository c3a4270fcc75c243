//! The Weft ResourceManager: sans-IO scheduler core, state store and HTTP server
