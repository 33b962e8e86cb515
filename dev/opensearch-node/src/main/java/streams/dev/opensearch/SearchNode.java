// A single-node OpenSearch for development and tests, started in this JVM from
// the Maven Central jars (no distribution tarball). Run through dev/opensearch.
//
// Usage: java -cp <lib>/* streams.dev.opensearch.SearchNode [name=value ...]
// Each argument is an OpenSearch setting that overrides the defaults below;
// dev/opensearch passes path.home, path.data, path.logs and http.port. The HTTP
// port defaults to $OPENSEARCH_PORT, else 9200. SIGTERM closes the node cleanly.

package streams.dev.opensearch;

import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public final class SearchNode extends Node {
    // The modules a distribution loads from its modules/ directory, here taken
    // from the class path: HTTP and transport, analyzers, extra field types and
    // painless scripts.
    private static final List<Class<? extends Plugin>> MODULES = List.of(
        Netty4Plugin.class, CommonAnalysisPlugin.class, MapperExtrasPlugin.class, PainlessPlugin.class);

    private SearchNode(Environment environment) {
        // Node's public constructor loads no class-path plugins; this one does.
        super(environment, MODULES, true);
    }

    public static void main(String[] args) throws Exception {
        String port = System.getenv().getOrDefault("OPENSEARCH_PORT", "9200");
        Settings.Builder settings = Settings.builder()
            .put("cluster.name", "streams-dev")
            .put("node.name", "dev")
            // Loopback only: unreachable from other hosts, and (like a
            // distribution bound to loopback) no vm.max_map_count sysctl needed.
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("discovery.type", "single-node")
            // Tests create their indices with explicit mappings.
            .put("action.auto_create_index", false)
            // A nearly full developer disk must not turn indices read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("path.home", Path.of("").toAbsolutePath().toString());
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) {
                System.err.println("SearchNode: expected name=value, got '" + arg + "'");
                System.exit(2);
            }
            settings.put(arg.substring(0, eq), arg.substring(eq + 1));
        }

        // Reads <path.home>/config/opensearch.yml when present, like a distribution.
        Environment environment =
            InternalSettingsPreparer.prepareEnvironment(settings.build(), Collections.emptyMap(), null, () -> "dev");
        SearchNode node = new SearchNode(environment);

        // SIGTERM (and Ctrl-C) run the shutdown hooks: close the node so its
        // shards are flushed and its ports released before the JVM exits.
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "search-node-shutdown"));

        try {
            node.start();
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1); // runs the hook, which closes what started
        }
        // The node's threads are daemons; this non-daemon wait keeps the JVM up.
        closed.await();
    }
}
