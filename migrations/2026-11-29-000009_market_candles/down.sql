DROP TABLE market_candles;
