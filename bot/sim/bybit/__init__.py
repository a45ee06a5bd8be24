"""The Bybit V5 personality of the local exchange (category linear, unified account): its own REST
and private-websocket hosts over the shared matching engine and accounts."""
