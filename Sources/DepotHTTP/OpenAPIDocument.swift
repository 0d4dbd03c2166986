// Placeholder until openapi.yaml is embedded by its script.
public enum OpenAPIDocument {
    public static let yaml = "openapi: 3.1.0\n"
}
