enum DepotHTTPModule {}
