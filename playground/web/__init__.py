"""The web layer: HTML pages, the JSON API and the WebSocket stream."""
